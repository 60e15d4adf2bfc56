"""Collective centres as they really are: site profiles, site reports and GBV risk flags."""
