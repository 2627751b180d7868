/*
 * The lazy-wire client, all of it, for the callers outside wire/:
 *   wire_client_conn.h    the server's address, connect, TLS, HELLO, AUTH
 *   wire_client_read.h    OPEN, the index
 *   wire_client_meta.h    an image's metadata files into a dir (restore by image id)
 *   wire_client_upload.h  publish an images dir
 */
#ifndef LAZY_WIRE_CLIENT_H
#define LAZY_WIRE_CLIENT_H

#include "wire_client_conn.h"
#include "wire_client_meta.h"
#include "wire_client_read.h"
#include "wire_client_upload.h"

#endif
