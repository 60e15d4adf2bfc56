"""Planning for floods to come: design-flood scenarios and which shelters to upgrade."""
