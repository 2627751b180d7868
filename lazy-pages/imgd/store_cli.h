/* store_cli.c: `criu-imgd store put DIR ID | get ID DIR`. */
#ifndef IMGD_STORE_CLI_H
#define IMGD_STORE_CLI_H

/* argv[0] is "store": the exit code. */
int store_cli(int argc, char **argv);

#endif
