#ifndef CEPOLL_H
#define CEPOLL_H

#include <stdint.h>

/// One readiness event, without the packed layout of `struct epoll_event`.
typedef struct {
  uint64_t token;
  uint32_t events;
} cepoll_event;

extern const uint32_t CEPOLL_IN;
extern const uint32_t CEPOLL_OUT;
extern const uint32_t CEPOLL_ERR;
extern const uint32_t CEPOLL_HUP;
extern const uint32_t CEPOLL_RDHUP;
/// Edge-triggered: an event when readiness arrives, not for as long as it lasts.
extern const uint32_t CEPOLL_ET;

/// epoll_create1(EPOLL_CLOEXEC).
int cepoll_create(void);
/// epoll_ctl with EPOLL_CTL_ADD / MOD / DEL; `token` comes back in events.
int cepoll_add(int epfd, int fd, uint32_t events, uint64_t token);
int cepoll_modify(int epfd, int fd, uint32_t events, uint64_t token);
int cepoll_remove(int epfd, int fd);
/// epoll_wait into an array of unpacked events; returns the count or -1.
int cepoll_wait(int epfd, cepoll_event *events, int capacity, int timeout_ms);

/// A non-blocking, close-on-exec eventfd.
int cepoll_eventfd(void);
/// Adds 1 to an eventfd (async-signal-safe).
void cepoll_eventfd_signal(int fd);
/// Reads and resets an eventfd.
void cepoll_eventfd_drain(int fd);

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC.
int cepoll_accept(int listen_fd);
/// A non-blocking, close-on-exec TCP socket of the given family.
int cepoll_tcp_socket(int family);

/// Installs a handler for `signo` that signals `eventfd` and records the signal.
int cepoll_forward_signal(int signo, int eventfd);
/// Returns and clears the bit set of signals received since the last call.
uint64_t cepoll_take_signals(void);
/// Ignores SIGPIPE for the process.
void cepoll_ignore_sigpipe(void);

#endif
