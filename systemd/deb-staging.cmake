# CPACK_PRE_BUILD_SCRIPTS for the .deb (see package.cmake): what Debian
# wants in a package and a plain `cmake --install` does not need. Runs on
# CPack's staged tree, after the install and before strip and packing.
if(CPACK_RINGQ_CHANGELOG_ERROR)
  message(FATAL_ERROR "${CPACK_RINGQ_CHANGELOG_ERROR}")
endif()
find_program(GZIP gzip REQUIRED)
set(_root "${CPACK_TEMPORARY_DIRECTORY}${CPACK_PACKAGING_INSTALL_PREFIX}")
set(_doc "${_root}/${CPACK_RINGQ_DOCDIR}")

# -n: no name or time stamp in the .gz, so equal inputs give equal files.
function(ringq_gzip src dst)
  execute_process(COMMAND ${GZIP} -9nc "${src}" OUTPUT_FILE "${dst}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gzip ${src} failed")
  endif()
  file(CHMOD "${dst}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endfunction()

file(MAKE_DIRECTORY "${_doc}")
file(COPY_FILE "${CPACK_RINGQ_DEBIAN_DIR}/copyright" "${_doc}/copyright")
file(CHMOD "${_doc}/copyright" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
ringq_gzip("${CPACK_RINGQ_DEBIAN_DIR}/changelog" "${_doc}/changelog.Debian.gz")
set(_overrides "${_root}/share/lintian/overrides")
file(MAKE_DIRECTORY "${_overrides}")
file(COPY_FILE "${CPACK_RINGQ_DEBIAN_DIR}/lintian-overrides" "${_overrides}/ringq")
file(CHMOD "${_overrides}/ringq" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# Manual pages are installed as written (man/) and compressed here.
file(GLOB _pages "${_root}/${CPACK_RINGQ_MANDIR}/man*/*")
if(NOT _pages)
  message(FATAL_ERROR "no manual pages in the staged tree")
endif()
foreach(page IN LISTS _pages)
  if(NOT page MATCHES "\\.gz$")
    ringq_gzip("${page}" "${page}.gz")
    file(REMOVE "${page}")
  endif()
endforeach()
