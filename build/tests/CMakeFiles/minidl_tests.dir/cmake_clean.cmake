file(REMOVE_RECURSE
  "CMakeFiles/minidl_tests.dir/main.cpp.o"
  "CMakeFiles/minidl_tests.dir/main.cpp.o.d"
  "CMakeFiles/minidl_tests.dir/test_gradient_check.cpp.o"
  "CMakeFiles/minidl_tests.dir/test_gradient_check.cpp.o.d"
  "minidl_tests"
  "minidl_tests.pdb"
  "minidl_tests_tests-b858cb2.cmake"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/minidl_tests.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
