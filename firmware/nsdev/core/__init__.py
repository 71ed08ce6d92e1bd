# Pure logic: takes time and samples as arguments, imports nothing hardware-specific.
