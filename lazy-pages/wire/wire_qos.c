/* wire_qos.c: the traffic class of fault connections (wire_qos.h). */
#include "wire_qos.h"

#include <errno.h>
#include <linux/pkt_sched.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <string.h>
#include <sys/socket.h>

#include "util/parse.h"

int wire_qos_mark_fault(int fd, int dscp)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (dscp == WIRE_DSCP_OFF)
		return 0;
	if (dscp < 0 || dscp > 63)
		return -EINVAL;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return -errno;
	int tos = dscp << 2; /* the kernel keeps the ECN bits of a TCP socket */
	int rc = 0;
	if (ss.ss_family == AF_INET6) {
		rc = setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos));
		/* An IPv4 peer of a dual-stack socket gets IPv4 headers: their TOS is IP_TOS's. */
		sl = sizeof(ss);
		if (!rc && !getpeername(fd, (struct sockaddr *)&ss, &sl) &&
		    ss.ss_family == AF_INET6 &&
		    IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
			rc = setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	} else {
		rc = setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	}
	/* After IP_TOS, which sets the priority from the old TOS bits (AF21 would be bulk). */
	int prio = TC_PRIO_INTERACTIVE;
	if (!rc)
		rc = setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &prio, sizeof(prio));
	return rc ? -errno : 0;
}

int wire_qos_parse(const char *s, int *dscp)
{
	long v;

	if (!strcmp(s, "off")) {
		*dscp = WIRE_DSCP_OFF;
		return 0;
	}
	if (parse_long(s, 0, 63, &v))
		return -EINVAL;
	*dscp = (int)v;
	return 0;
}
