# `cpack -G DEB` in a build configured with -DCMAKE_INSTALL_PREFIX=/usr
# makes ringq_<version>_<arch>.deb: binaries, units, the ringq group,
# the example config (a conffile) and bash completion.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ringq)
set(CPACK_PACKAGE_VENDOR ringq)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "bounded, persistent job queue daemon (io_uring, SQLite, systemd)")
set(CPACK_PACKAGE_DESCRIPTION "ringqd keeps a bounded, persistent queue of commands in SQLite and runs them on a fixed number of worker slots, as the users who submitted them, with timeouts, retries and captured output. ringq is its command-line client.")
set(CPACK_PACKAGE_CONTACT "ringq maintainers <maintainers@ringq.invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Library dependencies come from the binaries themselves.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(_deb ${CMAKE_CURRENT_LIST_DIR}/debian)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${_deb}/postinst;${_deb}/prerm;${_deb}/postrm;${_deb}/conffiles")
include(CPack)
