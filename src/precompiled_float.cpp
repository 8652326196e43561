// minidl::precompiled: minidl's templates for float, compiled once (see
// include/minidl/precompiled.hpp). float and double are separate files so that
// they build in parallel.
#include <minidl/minidl.hpp>

namespace minidl {
MINIDL_INSTANTIATIONS(template, float)
}  // namespace minidl
