# Empty dependencies file for minidl_tests.
# This may be replaced when dependencies are built.
