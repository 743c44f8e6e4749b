/* A logger mutex taken in a signal handler and in normal code.
 *
 * The program logs from main() and from its SIGUSR1 handler, both through log_line(), which
 * takes log_lock. If the signal arrives while main() is inside log_line(), the handler blocks on
 * a mutex its own thread holds: a self-deadlock. A signal handler is lockgraph's interrupt
 * context, so this is lockdep's "inconsistent lock state": log_lock is taken in SIGUSR1 context
 * and also with SIGUSR1 unblocked. Here the signal is raised only when main() holds nothing, so
 * the program never hangs; lockgraph reports it anyway.
 *
 * The twin (-DLG_EXAMPLE_FIXED) blocks SIGUSR1 while main() holds log_lock: silent.
 *
 * A plain pthread program: run it as `lockgraph run -- build/examples/signal_logger`.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buffer[4096];
static size_t log_used;

static void log_line(const char *line) {
  pthread_mutex_lock(&log_lock);
  size_t n = strlen(line);
  if (log_used + n < sizeof(log_buffer)) {
    memcpy(log_buffer + log_used, line, n);
    log_used += n;
  }
  pthread_mutex_unlock(&log_lock);
}

static void on_sigusr1(int sig) {
  (void)sig;
  log_line("got SIGUSR1\n"); /* the handler logs too */
}

static void log_from_main(const char *line) {
#ifndef LG_EXAMPLE_FIXED
  log_line(line); /* BUG: SIGUSR1 can land while log_lock is held */
#else
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  log_line(line);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
#endif
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);

  log_from_main("starting\n");
  raise(SIGUSR1);
  log_from_main("done\n");

  fwrite(log_buffer, 1, log_used, stdout);
  return 0;
}
