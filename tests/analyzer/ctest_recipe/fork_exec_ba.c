/* The other half of the cross-test ABBA of the ctest recipe test, taken in an exec'd child: the
 * test process forks, the child execs this program again with "child", and that process takes
 * lock_b then lock_a. Every process is consistent on its own; only the union of the per-process
 * logs has the cycle with cross_order.c (lock_a then lock_b). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t lock_b = PTHREAD_MUTEX_INITIALIZER;

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "child") == 0) {
    pthread_mutex_lock(&lock_b);
    pthread_mutex_lock(&lock_a);
    pthread_mutex_unlock(&lock_a);
    pthread_mutex_unlock(&lock_b);
    puts("exec'd child done");
    return 0;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    execl("/proc/self/exe", argv[0], "child", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return 1;
  puts("done");
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
