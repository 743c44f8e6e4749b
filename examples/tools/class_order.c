/* Comparison program for examples/tools/compare.sh: an inode -> page order in one path and a
 * page -> inode order in another, each on different objects. No run deadlocks, and no single pair
 * of locks is ever taken in both orders; but the next run may hand both paths the same inode and
 * page. lockgraph validates classes (every inode lock is one class, every page lock another), so
 * one run is enough; a checker that follows addresses needs the unlucky pairing to happen. */
#include <pthread.h>
#include <stdio.h>

struct inode {
  pthread_mutex_t i_lock;
  int dirty;
};
struct page {
  pthread_mutex_t lock;
  int flags;
};

static struct inode inodes[2];
static struct page pages[2];

static void inode_init(struct inode *inode) { pthread_mutex_init(&inode->i_lock, NULL); }
static void page_init(struct page *page) { pthread_mutex_init(&page->lock, NULL); }

/* Writeback: the inode, then its dirty page. */
static void *writeback(void *arg) {
  (void)arg;
  pthread_mutex_lock(&inodes[0].i_lock);
  pthread_mutex_lock(&pages[0].lock);
  pages[0].flags = 0;
  inodes[0].dirty = 0;
  pthread_mutex_unlock(&pages[0].lock);
  pthread_mutex_unlock(&inodes[0].i_lock);
  return NULL;
}

/* Reclaim: a locked page, then its owner inode. */
static void *reclaim(void *arg) {
  (void)arg;
  pthread_mutex_lock(&pages[1].lock);
  pthread_mutex_lock(&inodes[1].i_lock);
  inodes[1].dirty++;
  pthread_mutex_unlock(&inodes[1].i_lock);
  pthread_mutex_unlock(&pages[1].lock);
  return NULL;
}

int main(void) {
  for (int i = 0; i < 2; i++) {
    inode_init(&inodes[i]);
    page_init(&pages[i]);
  }
  pthread_t t;
  pthread_create(&t, NULL, writeback, NULL);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, reclaim, NULL);
  pthread_join(t, NULL);
  printf("dirty: %d %d\n", inodes[0].dirty, inodes[1].dirty);
  return 0;
}
