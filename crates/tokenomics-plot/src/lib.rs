pub fn placeholder_plot() {}
