# CPACK_POST_BUILD_SCRIPTS for the .deb (see package.cmake): CPack (3.25)
# makes ringq-dbgsym with the right control fields and debug files, but
# its md5sums names each file by its absolute path in the build tree, and
# it has no /usr/share/doc entry. Repack it the way Debian's own dbgsym
# packages are: md5sums of the data, .debug files not executable, and
# /usr/share/doc/ringq-dbgsym a link to ringq's (the package depends on
# ringq of the same version).
find_program(DPKG_DEB dpkg-deb REQUIRED)
find_program(MD5SUM md5sum REQUIRED)
foreach(ddeb IN LISTS CPACK_PACKAGE_FILES)
  if(NOT ddeb MATCHES "-dbgsym_[^/]*\\.ddeb$")
    continue()
  endif()
  set(tree "${CPACK_TOPLEVEL_DIRECTORY}/ringq-dbgsym-repack")
  file(REMOVE_RECURSE "${tree}")
  execute_process(COMMAND ${DPKG_DEB} --raw-extract "${ddeb}" "${tree}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "dpkg-deb --raw-extract ${ddeb} failed")
  endif()
  file(MAKE_DIRECTORY "${tree}/usr/share/doc")
  file(CREATE_LINK ringq "${tree}/usr/share/doc/ringq-dbgsym" SYMBOLIC)
  # md5sums lists regular files only, by their path in the package; the
  # .debug files are data (0644, as dh_strip leaves them), not programs.
  file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE "${tree}" "${tree}/usr/*")
  list(SORT files)
  set(sums "")
  foreach(f IN LISTS files)
    if(NOT IS_SYMLINK "${tree}/${f}")
      file(CHMOD "${tree}/${f}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
      execute_process(COMMAND ${MD5SUM} "${f}" WORKING_DIRECTORY "${tree}"
                      OUTPUT_VARIABLE line RESULT_VARIABLE rc)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR "md5sum ${f} failed")
      endif()
      string(APPEND sums "${line}")
    endif()
  endforeach()
  file(WRITE "${tree}/DEBIAN/md5sums" "${sums}")
  file(CHMOD "${tree}/DEBIAN/md5sums" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  execute_process(COMMAND ${DPKG_DEB} --root-owner-group -Zxz --build "${tree}" "${ddeb}"
                  OUTPUT_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "dpkg-deb --build ${ddeb} failed")
  endif()
  file(REMOVE_RECURSE "${tree}")
endforeach()
