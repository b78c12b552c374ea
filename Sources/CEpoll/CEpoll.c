#define _GNU_SOURCE
#include "CEpoll.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

const uint32_t CEPOLL_IN = EPOLLIN;
const uint32_t CEPOLL_OUT = EPOLLOUT;
const uint32_t CEPOLL_ERR = EPOLLERR;
const uint32_t CEPOLL_HUP = EPOLLHUP;
const uint32_t CEPOLL_RDHUP = EPOLLRDHUP;
const uint32_t CEPOLL_ET = EPOLLET;

int cepoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static int cepoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
  struct epoll_event event;
  memset(&event, 0, sizeof event);
  event.events = events;
  event.data.u64 = token;
  return epoll_ctl(epfd, op, fd, &event);
}

int cepoll_add(int epfd, int fd, uint32_t events, uint64_t token) {
  return cepoll_ctl(epfd, EPOLL_CTL_ADD, fd, events, token);
}

int cepoll_modify(int epfd, int fd, uint32_t events, uint64_t token) {
  return cepoll_ctl(epfd, EPOLL_CTL_MOD, fd, events, token);
}

int cepoll_remove(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int cepoll_wait(int epfd, cepoll_event *events, int capacity, int timeout_ms) {
  struct epoll_event raw[256];
  if (capacity > 256) capacity = 256;
  int count;
  do {
    count = epoll_wait(epfd, raw, capacity, timeout_ms);
  } while (count < 0 && errno == EINTR);
  for (int i = 0; i < count; i++) {
    events[i].token = raw[i].data.u64;
    events[i].events = raw[i].events;
  }
  return count;
}

int cepoll_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

void cepoll_eventfd_signal(int fd) {
  uint64_t one = 1;
  ssize_t ignored = write(fd, &one, sizeof one);
  (void)ignored;
}

void cepoll_eventfd_drain(int fd) {
  uint64_t value;
  ssize_t ignored = read(fd, &value, sizeof value);
  (void)ignored;
}

int cepoll_accept(int listen_fd) {
  return accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int cepoll_tcp_socket(int family) {
  return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

static _Atomic uint64_t received_signals;
static volatile sig_atomic_t signal_eventfds[65];

static void forward_signal(int signo) {
  int saved = errno;
  atomic_fetch_or(&received_signals, (uint64_t)1 << signo);
  cepoll_eventfd_signal(signal_eventfds[signo]);
  errno = saved;
}

int cepoll_forward_signal(int signo, int eventfd) {
  if (signo <= 0 || signo >= 64) return -1;
  signal_eventfds[signo] = eventfd;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = forward_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  return sigaction(signo, &action, NULL);
}

uint64_t cepoll_take_signals(void) { return atomic_exchange(&received_signals, 0); }

void cepoll_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }
