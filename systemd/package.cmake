# `cpack -G DEB` in a build configured with -DCMAKE_INSTALL_PREFIX=/usr
# makes two packages, to Debian's rules (lintian --pedantic is clean):
#   ringq_<version>-<revision>_<arch>.deb   binaries (stripped), units,
#       group ringq, the config and the PAM service (conffiles), manual
#       pages, bash completion, copyright and changelog;
#   ringq-dbgsym_<version>-<revision>_<arch>.ddeb   the binaries' debug
#       symbols in /usr/lib/debug/.build-id/, where gdb and debuginfod
#       clients look them up by build id.
# The maintainer scripts and the control extras are in systemd/debian/.
set(_deb ${CMAKE_CURRENT_LIST_DIR}/debian)

# The Debian revision comes from the changelog's top entry, whose upstream
# version must be the project's: a new version needs a changelog entry.
# A mismatch fails `cpack` (in deb-staging.cmake), not the build.
file(STRINGS ${_deb}/changelog _top LIMIT_COUNT 1)
set(CPACK_RINGQ_CHANGELOG_ERROR "")
if(_top MATCHES "^ringq \\(([^)]+)-([^-)]+)\\) ")
  set(CPACK_DEBIAN_PACKAGE_RELEASE ${CMAKE_MATCH_2})
  if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
    set(CPACK_RINGQ_CHANGELOG_ERROR "systemd/debian/changelog's top entry is for ${CMAKE_MATCH_1}, "
        "the project is ${PROJECT_VERSION}: add an entry for ${PROJECT_VERSION}-1")
  endif()
else()
  set(CPACK_RINGQ_CHANGELOG_ERROR "systemd/debian/changelog: no 'ringq (VERSION-REVISION) ' on its first line")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ringq)
set(CPACK_PACKAGE_VENDOR ringq)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "bounded, persistent job queue daemon (io_uring, SQLite, systemd)")
# The extended description (CPack puts the summary above it), wrapped
# for dpkg: lines under 80 columns, "." for an empty one.
set(CPACK_PACKAGE_DESCRIPTION "ringqd keeps a bounded, persistent queue of commands in SQLite and runs
them on a fixed number of worker slots, as the users who submitted them,
with timeouts, retries, dependencies, named queues and captured output.
Members of group ringq submit through a socket-activated systemd unit.
.
ringq is its command-line client; ringq-bench is its load generator.")
set(CPACK_PACKAGE_CONTACT "ringq maintainers <maintainers@ringq.invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from the binaries themselves; the postinst
# runs systemd-sysusers (debhelper's dh_installsysusers names the same
# alternatives). deb-systemd-helper is in init-system-helpers, which is
# essential.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd | systemd-standalone-sysusers | systemd-sysusers")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${_deb}/postinst;${_deb}/prerm;${_deb}/postrm;${_deb}/conffiles")
# Strip the binaries and put what was stripped in ringq-dbgsym, as
# Debian's own dh_strip does (CPack runs objcopy --only-keep-debug, then
# --strip-unneeded, and adds a debuglink); deb-dbgsym.cmake then mends
# what CPack gets wrong in that package.
set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
set(CPACK_POST_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/deb-dbgsym.cmake)
# Run on the staged tree before it is packed: copyright, changelog,
# compressed manual pages.
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/deb-staging.cmake)
set(CPACK_RINGQ_DEBIAN_DIR ${_deb})
set(CPACK_RINGQ_DOCDIR ${CMAKE_INSTALL_DOCDIR})
set(CPACK_RINGQ_MANDIR ${CMAKE_INSTALL_MANDIR})
include(CPack)
