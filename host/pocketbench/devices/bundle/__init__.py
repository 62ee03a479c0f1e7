"""Runner bundles: pocket_runner with its own glibc, for phones without an NDK build."""
