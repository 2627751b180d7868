/* Loopback ports for the tests. */
#ifndef TESTS_PORTS_H
#define TESTS_PORTS_H

/* A loopback TCP port that was free a moment ago (nobody listens on it), or 0. */
unsigned loopback_free_port(void);
/* A socket listening on a loopback port of the kernel's choice (*port), or -1. */
int loopback_listen(unsigned *port);

#endif
