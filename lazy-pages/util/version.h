/* The version of criu-lazy: criu-lazyd, criu-imgd, lazy_restore.so and the man pages
 * (tests/man/build.sh reads it from here). The one place it is set. */
#ifndef CRIU_LAZY_VERSION_H
#define CRIU_LAZY_VERSION_H

#define CRIU_LAZY_VERSION "0.1.0"

#endif
