/* scripts/bench/delayproxy.c: a userspace WAN emulator for the benchmark (loopback only).
 *
 *   delayproxy --listen 127.0.0.1:PORT --target 127.0.0.1:PORT [--rtt-ms N] [--kbit N]
 *              [--port-file F]
 *
 * Forwards TCP connections to --target, one thread per connection, and makes every connection
 * behave as if it crossed a WAN link:
 *   --rtt-ms N  added round-trip time: each byte is held N/2 ms in each direction, and the
 *               connection to the target is made N ms after the accept (the TCP handshake);
 *   --kbit N    bandwidth of the link per connection and direction, in kbit/s (0 = unlimited):
 *               a chunk leaves no earlier than the previous one plus its serialisation time.
 * At most 8 MiB wait in each direction of a connection; beyond that the proxy stops reading from
 * that side, so the sender is slowed by TCP as on a real link. With PORT 0 the chosen port is
 * printed as the first line of stdout (and written to --port-file F). The addresses must be
 * loopback (127.0.0.0/8 or ::1): this tool never forwards traffic off the machine.
 * SIGINT/SIGTERM stop it (exit 0).
 *
 * Build: cc -O2 -pthread -o delayproxy delayproxy.c (scripts/bench.sh does it). Self-contained on
 * purpose: the benchmark builds it without the project's build tree.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../tests/tools/loopaddr.h"

#define QUEUE_CAP (8u << 20)
#define READ_CHUNK (64 * 1024)

static struct sockaddr_storage g_listen, g_target;
static socklen_t g_listen_len, g_target_len;
static uint64_t g_rtt_us, g_kbit;
static atomic_int g_stop; /* set by the signal handler, read by every connection thread */

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "delayproxy: %s%s%s\n", what, arg ? " " : "", arg ? arg : "");
	exit(2);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t parse_u64(const char *s, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		die("bad number", s);
	return v;
}

static void parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char why[160];

	if (loopaddr_parse(s, ss, len, why, sizeof(why)) < 0)
		die(why, NULL);
}

/* ---- one direction of a connection: a queue of chunks, each with the time it may leave ---- */

struct chunk {
	struct chunk *next;
	uint64_t due_us;
	size_t len, off;
	char data[];
};

struct pipe_dir {
	int in, out;          /* read from in, write to out */
	struct chunk *head, *tail;
	size_t queued;        /* bytes waiting */
	uint64_t link_free_us; /* when the emulated link is free again (bandwidth) */
	int in_eof, out_shut, blocked;
};

static int dir_read(struct pipe_dir *d, char *buf)
{
	ssize_t n = recv(d->in, buf, READ_CHUNK, MSG_DONTWAIT);
	struct chunk *c;
	uint64_t t;

	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	if (n == 0) {
		d->in_eof = 1;
		return 0;
	}
	c = malloc(sizeof(*c) + (size_t)n);
	if (!c)
		return -1;
	memcpy(c->data, buf, (size_t)n);
	c->len = (size_t)n;
	c->off = 0;
	c->next = NULL;
	t = now_us();
	if (g_kbit) {
		/* serialisation on the emulated link: bits / (kbit/s) = ms; in us: bits * 1000 / kbit */
		uint64_t ser = (uint64_t)n * 8u * 1000u / g_kbit;

		if (d->link_free_us > t)
			t = d->link_free_us;
		t += ser;
		d->link_free_us = t;
	}
	t += g_rtt_us / 2;
	c->due_us = t;
	if (d->tail)
		d->tail->next = c;
	else
		d->head = c;
	d->tail = c;
	d->queued += (size_t)n;
	return 0;
}

/* Sends what is due. Returns -1 on a write error. */
static int dir_write(struct pipe_dir *d, uint64_t now)
{
	d->blocked = 0;
	while (d->head && d->head->due_us <= now) {
		struct chunk *c = d->head;
		ssize_t n = send(d->out, c->data + c->off, c->len - c->off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				d->blocked = 1;
				return 0;
			}
			return -1;
		}
		c->off += (size_t)n;
		d->queued -= (size_t)n;
		if (c->off < c->len) {
			d->blocked = 1;
			return 0;
		}
		d->head = c->next;
		if (!d->head)
			d->tail = NULL;
		free(c);
	}
	if (d->in_eof && !d->head && !d->out_shut) {
		shutdown(d->out, SHUT_WR);
		d->out_shut = 1;
	}
	return 0;
}

static void dir_free(struct pipe_dir *d)
{
	while (d->head) {
		struct chunk *c = d->head;

		d->head = c->next;
		free(c);
	}
	d->tail = NULL;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !atomic_load(&g_stop))
		;
}

static void *conn_main(void *arg)
{
	int cfd = (int)(intptr_t)arg, sfd, one = 1;
	struct pipe_dir d[2];
	char *buf = malloc(READ_CHUNK);

	sleep_us(g_rtt_us); /* the TCP handshake across the link */
	sfd = socket(g_target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!buf || sfd < 0 || connect(sfd, (struct sockaddr *)&g_target, g_target_len) < 0) {
		if (sfd >= 0)
			close(sfd);
		close(cfd);
		free(buf);
		return NULL;
	}
	setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(d, 0, sizeof(d));
	d[0].in = cfd, d[0].out = sfd;
	d[1].in = sfd, d[1].out = cfd;
	while (!atomic_load(&g_stop)) {
		struct pollfd p[4];
		int np = 0, idx_in[2] = {-1, -1}, idx_out[2] = {-1, -1}, timeout = 200;
		uint64_t now = now_us();

		if (dir_write(&d[0], now) < 0 || dir_write(&d[1], now) < 0)
			break;
		if (d[0].in_eof && d[1].in_eof && !d[0].head && !d[1].head)
			break;
		for (int k = 0; k < 2; k++) {
			if (!d[k].in_eof && d[k].queued < QUEUE_CAP) {
				idx_in[k] = np;
				p[np++] = (struct pollfd){.fd = d[k].in, .events = POLLIN};
			}
			if (d[k].blocked) {
				idx_out[k] = np;
				p[np++] = (struct pollfd){.fd = d[k].out, .events = POLLOUT};
			} else if (d[k].head) {
				uint64_t wait = d[k].head->due_us > now ? d[k].head->due_us - now : 0;
				int ms = (int)((wait + 999) / 1000);

				if (ms < timeout)
					timeout = ms;
			}
		}
		if (poll(p, (nfds_t)np, timeout) < 0 && errno != EINTR)
			break;
		for (int k = 0; k < 2; k++) {
			if (idx_in[k] >= 0 && (p[idx_in[k]].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    dir_read(&d[k], buf) < 0)
				goto done;
			if (idx_out[k] >= 0 && (p[idx_out[k]].revents & (POLLERR | POLLNVAL)))
				goto done;
		}
	}
done:
	dir_free(&d[0]);
	dir_free(&d[1]);
	close(sfd);
	close(cfd);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *port_file = NULL;
	int have_listen = 0, have_target = 0, lfd, cfd;
	char why[160];
	pthread_attr_t attr;
	unsigned port;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			die("usage: delayproxy --listen ADDR:PORT --target ADDR:PORT [--rtt-ms N] [--kbit N] "
			    "[--port-file F]", NULL);
		i++;
		if (strcmp(a, "--listen") == 0)
			parse_addr(v, &g_listen, &g_listen_len), have_listen = 1;
		else if (strcmp(a, "--target") == 0)
			parse_addr(v, &g_target, &g_target_len), have_target = 1;
		else if (strcmp(a, "--rtt-ms") == 0)
			g_rtt_us = parse_u64(v, 10000) * 1000u;
		else if (strcmp(a, "--kbit") == 0)
			g_kbit = parse_u64(v, 100000000);
		else if (strcmp(a, "--port-file") == 0)
			port_file = v;
		else
			die("unknown option", a);
	}
	if (!have_listen || !have_target)
		die("--listen and --target are required", NULL);
	loopaddr_signals(&g_stop);

	lfd = loopaddr_listen(&g_listen, g_listen_len, 256, &port, why, sizeof(why));
	if (lfd < 0)
		die(why, NULL);
	printf("%u\n", port);
	fflush(stdout);
	if (port_file) {
		FILE *f = fopen(port_file, "w");

		if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0)
			die("cannot write", port_file);
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	while ((cfd = loopaddr_accept(lfd, &g_stop)) >= 0) {
		pthread_t t;

		if (pthread_create(&t, &attr, conn_main, (void *)(intptr_t)cfd) != 0)
			close(cfd);
	}
	close(lfd);
	return 0;
}
