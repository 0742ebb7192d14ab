# ctest package-lint: cpack the build in BUILD_DIR into OUT, then lintian
# on both packages; any error, warning, info or pedantic tag fails.
if(NOT PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "configure the build with -DCMAKE_INSTALL_PREFIX=/usr to package it (it has ${PREFIX})")
endif()
file(REMOVE_RECURSE "${OUT}")
execute_process(COMMAND ${CMAKE_CPACK_COMMAND} -G DEB -B "${OUT}" WORKING_DIRECTORY "${BUILD_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cpack failed:\n${out}")
endif()
file(GLOB pkgs "${OUT}/*.deb" "${OUT}/*.ddeb")
list(LENGTH pkgs n)
if(NOT n EQUAL 2)
  message(FATAL_ERROR "expected a .deb and a .ddeb in ${OUT}, found: ${pkgs}")
endif()
execute_process(COMMAND ${LINTIAN} --pedantic --info --fail-on error,warning,info,pedantic ${pkgs}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "lintian exited ${rc}:\n${out}${err}")
endif()
file(REMOVE_RECURSE "${OUT}")
