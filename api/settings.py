"""Service settings from the environment (``FLOODWARN_`` prefix) or an optional file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.secrets import SecretBox
from floodwarn.alerts.signing import CapSigner
from floodwarn.ensemble import Execution, default_workers
from floodwarn.errors import InputError


class Settings(BaseSettings):
    """Where the service keeps its store and run outputs, and who signs its alerts.

    ``database_url`` defaults to an SQLite file under ``data_dir``; a PostgreSQL URL
    (``postgresql+psycopg://…``) uses a server instead.
    """

    model_config = SettingsConfigDict(env_prefix="FLOODWARN_", env_file=None, extra="forbid")

    data_dir: Path = Field(default=Path("floodwarn-data"))
    database_url: str | None = None
    sender: str = "floodwarn@proteccioncivil.gob.sv"
    terrain_dir: Path | None = None  # default: the demo terrain under data_dir
    # Flood scenarios for planning (`floodwarn scenarios run --out`), served under /planning;
    # default: DATA_DIR/scenarios (the routes answer 404 saying how to make them until then).
    scenarios_dir: Path | None = None
    run_worker: bool = True  # execute queued runs in a background thread
    admin_key: str | None = None  # bootstrap administrator key (FLOODWARN_ADMIN_KEY)
    max_upload_mb: float = Field(default=512.0, gt=0)  # largest forecast file accepted
    # Largest rain array a forecast may declare (members × steps × rows × cols), checked from
    # the file's header before anything is allocated; None: floodwarn's default.
    max_rain_cells: int | None = Field(default=None, gt=0)
    # Webhook secrets are sealed with this Fernet key; unset: a key kept in data_dir/secret.key.
    secret_key: str | None = None
    # A running run's lease (s): renewed while the worker lives; after a crash the run is
    # taken again once it lapses.
    run_lease_s: float = Field(default=30.0, ge=2)
    # The worker counts as stalled (/health 503) when it has shown no sign of life this long.
    worker_stall_s: float = Field(default=900.0, gt=0)
    # CAP messages are signed (XML-DSig) when both are set: PEM private key and its certificate.
    signing_key: Path | None = None
    signing_cert: Path | None = None
    # Ensemble members run on the Dask cluster of this scheduler (FLOODWARN_DASK_SCHEDULER,
    # e.g. tcp://10.0.0.5:8786; its workers need this floodwarn installed: the run's model is
    # sent to them) or, unset, on a local cluster of ensemble_workers processes (0: one per
    # core, at most 8; 1: one after another in the forecast process).
    dask_scheduler: str | None = None
    ensemble_workers: int = Field(default=0, ge=0, le=256)

    def execution(self) -> Execution:
        """How a run's ensemble members execute."""
        if self.dask_scheduler:
            return Execution(scheduler=self.dask_scheduler)
        return Execution(workers=self.ensemble_workers or default_workers())

    def cap_signer(self) -> CapSigner | None:
        """The configured CAP signer, checked; None when signing is not configured."""
        if self.signing_key is None and self.signing_cert is None:
            return None
        if self.signing_key is None or self.signing_cert is None:
            raise InputError(
                "CAP signing needs both FLOODWARN_SIGNING_KEY (PEM private key) and "
                "FLOODWARN_SIGNING_CERT (its PEM certificate); only one is set."
            )
        return CapSigner.from_files(self.signing_key, self.signing_cert)

    def secret_box(self) -> SecretBox:
        """What seals and opens webhook secrets."""
        return SecretBox.from_settings(self.secret_key, self.data_dir / "secret.key")

    @property
    def uploads_dir(self) -> Path:
        """Uploads land here while they are checked (outside the inbox the worker scans)."""
        return self.data_dir / "uploads"

    @property
    def layers_dir(self) -> Path:
        """Land cover, soil and antecedent rain files a run's options may name."""
        return self.data_dir / "layers"

    @property
    def inbox_dir(self) -> Path:
        """Forecast files dropped here become runs."""
        return self.data_dir / "inbox"

    @property
    def scenarios(self) -> Path:
        return self.scenarios_dir or self.data_dir / "scenarios"

    @property
    def terrain(self) -> Path:
        return self.terrain_dir or self.data_dir / "demo" / "terrain"

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'floodwarn.sqlite').resolve()}"
