pub fn placeholder_sim() {}
