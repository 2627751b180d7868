/*
 * The traffic class of a connection that carries faults. A fault's answer should not wait
 * behind the stream's bytes in a queue on the way; where the queue honours it (a switch that
 * schedules by DSCP, the host's pfifo_fast or prio bands) the mark lets it go first. Both ends
 * mark their fault connections: criu-imgd its answers, criu-lazyd its requests and acks.
 */
#ifndef LAZY_WIRE_QOS_H
#define LAZY_WIRE_QOS_H

/* The default DSCP of fault connections: AF21, RFC 4594's "low-latency data". */
#define WIRE_FAULT_DSCP 18
#define WIRE_DSCP_OFF (-1)

/*
 * Mark fd (a TCP socket, IPv4 or IPv6) as a fault connection: DSCP dscp (0-63) in its IP
 * header and the socket priority TC_PRIO_INTERACTIVE (band 0 of pfifo_fast). WIRE_DSCP_OFF:
 * nothing. 0 or -errno; a connection works unmarked, so callers log and go on.
 */
int wire_qos_mark_fault(int fd, int dscp);

/* "off" or a DSCP 0-63 into *dscp: 0 or -EINVAL. */
int wire_qos_parse(const char *s, int *dscp);

#endif
