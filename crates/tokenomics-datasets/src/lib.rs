pub fn placeholder_datasets() {}
