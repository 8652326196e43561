# minidl_native_flags(<var>): the compile options for building with
# -march=native, for the project's own targets and for users' programs (the
# installed package's minidl::native target).
#
# -march=native, if the compiler has it. With GCC before 13, when -march=native
# enables AVX-512, also -Wno-uninitialized -Wno-maybe-uninitialized: GCC 12's
# AVX-512 headers make _mm512_undefined_ps() and its kin from a self-initialised
# variable (`__m512 __Y = __Y;`), passed to intrinsics that ignore it
# (_mm512_max_ps, ...). Once Eigen's AVX-512 packet code is inlined into a
# function, -Wuninitialized and -Wmaybe-uninitialized report that variable,
# and -Werror fails the build: false positives from the compiler's own header
# (GCC bug 105593, fixed in GCC 13). Empty if the compiler has no -march=native.
include_guard(GLOBAL)
include(CheckCXXCompilerFlag)
include(CheckCXXSourceCompiles)

function(minidl_native_flags var)
  set(flags)
  check_cxx_compiler_flag(-march=native MINIDL_HAVE_MARCH_NATIVE)
  if(MINIDL_HAVE_MARCH_NATIVE)
    list(APPEND flags -march=native)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      set(CMAKE_REQUIRED_FLAGS -march=native)
      check_cxx_source_compiles("#ifndef __AVX512F__\n#error no AVX-512\n#endif\nint main() { return 0; }"
                                MINIDL_NATIVE_HAS_AVX512)
      if(MINIDL_NATIVE_HAS_AVX512)
        list(APPEND flags -Wno-uninitialized -Wno-maybe-uninitialized)
      endif()
    endif()
  endif()
  set(${var} ${flags} PARENT_SCOPE)
endfunction()
