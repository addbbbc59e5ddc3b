pub fn placeholder_testkit() {}
