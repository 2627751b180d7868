/* The traffic class of fault connections (lazy-pages/wire/wire_qos.c), on real sockets. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/pkt_sched.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire/wire_qos.h"

/* A connected TCP pair on family's loopback: fds[0] the client, fds[1] the accepted end. */
static void tcp_pair(int family, int fds[2])
{
	struct sockaddr_storage ss = {.ss_family = (sa_family_t)family};
	socklen_t sl =
	    family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int l = socket(family, SOCK_STREAM, 0);
	cr_assert(l >= 0);
	cr_assert_eq(bind(l, (struct sockaddr *)&ss, sl), 0);
	cr_assert_eq(listen(l, 1), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&ss, &sl), 0);
	fds[0] = socket(family, SOCK_STREAM, 0);
	cr_assert_eq(connect(fds[0], (struct sockaddr *)&ss, sl), 0);
	fds[1] = accept(l, NULL, NULL);
	cr_assert(fds[1] >= 0);
	close(l);
}

static void tos_prio(int fd, int family, int *tos, int *prio)
{
	socklen_t l = sizeof(*tos);
	if (family == AF_INET6)
		cr_assert_eq(getsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, tos, &l), 0);
	else
		cr_assert_eq(getsockopt(fd, IPPROTO_IP, IP_TOS, tos, &l), 0);
	l = sizeof(*prio);
	cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_PRIORITY, prio, &l), 0);
}

Test(wire_qos, marks_a_fault_connection_v4_and_v6_and_off_leaves_it)
{
	static const int families[] = {AF_INET, AF_INET6};

	for (unsigned i = 0; i < 2; i++) {
		int fds[2], tos, prio;
		tcp_pair(families[i], fds);
		cr_assert_eq(wire_qos_mark_fault(fds[1], WIRE_DSCP_OFF), 0);
		tos_prio(fds[1], families[i], &tos, &prio);
		cr_assert(tos == 0 && prio == 0, "off: unmarked (tos %#x, priority %d)", tos, prio);
		cr_assert_eq(wire_qos_mark_fault(fds[1], WIRE_FAULT_DSCP), 0);
		tos_prio(fds[1], families[i], &tos, &prio);
		/* AF21 alone would map to the bulk priority: the interactive one must win. */
		cr_assert(tos == WIRE_FAULT_DSCP << 2 && prio == TC_PRIO_INTERACTIVE,
			  "family %d: tos %#x, priority %d", families[i], tos, prio);
		cr_assert_eq(wire_qos_mark_fault(fds[0], 64), -EINVAL);
		close(fds[0]);
		close(fds[1]);
	}
	cr_assert_eq(wire_qos_mark_fault(0 /* no socket */, 18), -ENOTSOCK);
}

Test(wire_qos, marks_the_ipv4_header_of_a_dual_stack_socket)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(a6);
	int off = 0, tos, tclass, prio;
	int l = socket(AF_INET6, SOCK_STREAM, 0);

	cr_assert_eq(setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)), 0);
	cr_assert_eq(bind(l, (struct sockaddr *)&a6, sizeof(a6)), 0);
	cr_assert_eq(listen(l, 1), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a6, &sl), 0);
	a4.sin_port = a6.sin6_port;
	int c = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&a4, sizeof(a4)), 0);
	int s = accept(l, NULL, NULL);
	cr_assert(s >= 0);
	cr_assert_eq(wire_qos_mark_fault(s, WIRE_FAULT_DSCP), 0);
	tos_prio(s, AF_INET, &tos, &prio);
	tos_prio(s, AF_INET6, &tclass, &prio);
	cr_assert(tos == WIRE_FAULT_DSCP << 2 && tclass == WIRE_FAULT_DSCP << 2 &&
		      prio == TC_PRIO_INTERACTIVE,
		  "tos %#x, traffic class %#x, priority %d", tos, tclass, prio);
	close(c);
	close(s);
	close(l);
}

Test(wire_qos, parse)
{
	int d = 7;

	cr_assert(!wire_qos_parse("off", &d) && d == WIRE_DSCP_OFF);
	cr_assert(!wire_qos_parse("0", &d) && d == 0);
	cr_assert(!wire_qos_parse("63", &d) && d == 63);
	d = 7;
	cr_assert_eq(wire_qos_parse("64", &d), -EINVAL);
	cr_assert_eq(wire_qos_parse("-1", &d), -EINVAL);
	cr_assert_eq(wire_qos_parse("", &d), -EINVAL);
	cr_assert_eq(wire_qos_parse("18x", &d), -EINVAL);
	cr_assert_eq(d, 7, "a bad value changes nothing");
}
