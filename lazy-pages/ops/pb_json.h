/*
 * Any protobuf-c message as JSON (json-c), from its descriptor: field names as keys, enums
 * by name, 64-bit integers as JSON integers, bytes as hex, optional fields only when set,
 * repeated fields as arrays. For `status --json`, so the JSON and the protobuf the daemon
 * sent can never disagree.
 */
#ifndef LP_OPS_PB_JSON_H
#define LP_OPS_PB_JSON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <protobuf-c/protobuf-c.h>

/* A new json object (NULL when out of memory); json_object_put() it. */
struct json_object *pb_to_json(const ProtobufCMessage *m);

/* m as JSON on f, a line of its own (one_line) or indented; 0 or -ENOMEM. */
int pb_json_print(FILE *f, const ProtobufCMessage *m, bool one_line);

#endif
