/* Drill clone of one DR volume: the data plane of the DR drill
 * (docs/design/replication.md "DR drill on a clone").
 *
 * A job copies the source volume's file, as it was at the instant of
 * clone_job_capture, into a new file. The capture either reflinks the whole
 * file (FICLONE: done at once) or binds a preserver to the source: from
 * then on every local write-type I/O on the source first copies the 1 MiB
 * clone chunks it touches into the destination (copy-before-write), and
 * clone_job_run copies the rest in the background. Each chunk is copied
 * once, under the job's mutex; its done bit is set after the copy.
 *
 * Threading: capture with no write-type I/O in flight on the source (the
 * caller's fences); run on one worker thread; progress from anywhere;
 * clone_job_free after run returned (or instead of it). A preserver never
 * fails a write: a copy error fails the job instead (clone_job_error). */
#ifndef EVSREP_VOLUME_CLONE_H
#define EVSREP_VOLUME_CLONE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct volume;
struct clone_job;

#define CLONE_CHUNK_BYTES (1024 * 1024)

enum clone_method { CLONE_NONE, CLONE_REFLINK, CLONE_COPY };

/* A job from src (a reference is taken) into the existing file dst_path
 * (opened here), size_bytes long (the source's size at the capture). */
int clone_job_new(struct volume *src, const char *dst_path, uint64_t size_bytes,
                  struct clone_job **out);
/* The instant: reflink when try_reflink and the file system can, else bind
 * the preserver. Returns the method. */
enum clone_method clone_job_capture(struct clone_job *j, bool try_reflink);
/* Copy every chunk not yet copied, then make the destination durable and
 * unbind the preserver. *stop ends it early (-ECANCELED). 0 or -errno (the
 * job's first error). */
int clone_job_run(struct clone_job *j, const atomic_bool *stop);
/* Chunks copied (or found to be holes) out of the total. */
void clone_job_progress(const struct clone_job *j, uint64_t *done, uint64_t *total);
/* Data bytes copied so far (reflink: 0). */
uint64_t clone_job_data_bytes(const struct clone_job *j);
/* Chunks copied by copy-before-write (a write on the source came first):
 * the cost the clone put on the source's writers. */
uint64_t clone_job_preserved_chunks(const struct clone_job *j);
/* 0, or the first error that failed the job. */
int clone_job_error(const struct clone_job *j);
/* Unbind (if still bound), close, put the source. */
void clone_job_free(struct clone_job *j);

#endif
