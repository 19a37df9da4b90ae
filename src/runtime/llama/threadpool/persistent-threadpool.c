/*
 * A persistent llama.cpp thread pool for every context node-llama-cpp creates.
 *
 * Why: node-llama-cpp 3.22.1 never calls llama_attach_threadpool, so each llama_decode with n > 1
 * threads makes ggml create and join a disposable pool: a lone stream's 2-thread step measured
 * 19.6-20.4 ms on the bench model against 8.6-8.8 ms with a persistent pool (1 thread: 7.1-8.7
 * ms either way), which is why 2-thread steps never paid on 2 cores. llama-server and
 * llama-bench attach one (common_init_from_params / llama-bench.cpp).
 *
 * How: this library is loaded with RTLD_GLOBAL before node-llama-cpp's addon, so the addon's calls
 * to llama_set_n_threads and llama_free bind here first (the global scope is searched before a
 * dlopen'ed object's own dependencies); node-llama-cpp's setThreads calls llama_n_threads first.
 * All three have plain arguments, so no llama.cpp struct is passed through by value. Either
 * threads call attaches a pool of max(n_threads, n_threads_batch) threads to the context the first
 * time it sees the context using more than one, and a larger one if a later call asks for more;
 * llama_free frees the context, then its pool. The real functions are looked up in the libllama
 * the addon loaded (found by name among the loaded objects, opened with RTLD_NOLOAD).
 *
 * Both calls run on the JS thread that owns the context while no decode of it is in flight
 * (node-llama-cpp's setThreads and dispose are synchronous; a decode runs on the libuv pool only
 * between them), so swapping a context's pool never races its graph compute.
 *
 * The module is a Node-API addon too: configure(poll) sets ggml's polling level for pools made
 * after it (0: idle pool threads sleep at once; two engine workers' spinning threads would take
 * each other's cores), and stats() reports what is attached.
 *
 * Greedy draws on the calling thread (lastContext, argmax): node-llama-cpp samples every token
 * through an AsyncWorker, a round trip over the libuv pool (queue, a pool thread wakes, the JS
 * thread wakes again) that sits between two decodes of a stream. For a request whose sampler
 * chain is only llama.cpp's greedy sampler (temperature 0, no bias, penalties or grammar) the
 * token is the first highest logit, so the engine reads it from llama_get_logits_ith itself, on
 * its own thread, while no decode of the context is in flight. The engine learns its context's
 * pointer by calling node-llama-cpp's getThreads (llama_n_threads, interposed here) and then
 * lastContext() on the same thread.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>

/* Mirrors ggml.h (llama.cpp as bundled with node-llama-cpp 3.22.1); checked at run time below. */
#define GGML_MAX_N_THREADS 512
struct ggml_threadpool_params {
  bool cpumask[GGML_MAX_N_THREADS];
  int n_threads;
  int prio;
  uint32_t poll;
  bool strict_cpu;
  bool paused;
};
struct llama_context;
struct ggml_threadpool;
typedef void *ggml_backend_dev_t;
typedef void *ggml_backend_reg_t;
#define GGML_BACKEND_DEVICE_TYPE_CPU 0

typedef void (*set_n_threads_fn)(struct llama_context *, int32_t, int32_t);
typedef int32_t (*n_threads_fn)(struct llama_context *);
typedef void (*free_fn)(struct llama_context *);
typedef void (*attach_fn)(struct llama_context *, struct ggml_threadpool *, struct ggml_threadpool *);
typedef ggml_backend_dev_t (*dev_by_type_fn)(int);
typedef ggml_backend_reg_t (*dev_reg_fn)(ggml_backend_dev_t);
typedef void *(*proc_address_fn)(ggml_backend_reg_t, const char *);
typedef struct ggml_threadpool_params (*params_default_fn)(int);
typedef struct ggml_threadpool *(*pool_new_fn)(struct ggml_threadpool_params *);
typedef void (*pool_free_fn)(struct ggml_threadpool *);
typedef float *(*logits_ith_fn)(struct llama_context *, int32_t);
typedef const void *(*get_model_fn)(const struct llama_context *);
typedef const void *(*model_vocab_fn)(const void *);
typedef int32_t (*vocab_n_tokens_fn)(const void *);

static struct {
  bool resolved;
  const char *error; /* why pools cannot be made (then calls pass straight through) */
  set_n_threads_fn set_n_threads;
  n_threads_fn n_threads;
  n_threads_fn n_threads_batch;
  free_fn free;
  attach_fn attach;
  params_default_fn params_default;
  pool_new_fn pool_new;
  pool_free_fn pool_free;
  /* Greedy draws (all four, or none: then argmax answers -2 and the engine samples natively). */
  logits_ith_fn logits_ith;
  get_model_fn get_model;
  model_vocab_fn model_vocab;
  vocab_n_tokens_fn vocab_n_tokens;
} api;

/* The context of this thread's last llama_n_threads call (see lastContext). */
static __thread struct llama_context *last_threads_ctx;

#define MAX_CONTEXTS 256
static struct {
  struct llama_context *ctx;
  struct ggml_threadpool *pool;
  int threads;
} attached[MAX_CONTEXTS];
static int attached_count;
static uint32_t poll_level = 0;
static uint64_t pools_made;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int find_libllama(struct dl_phdr_info *info, size_t size, void *out) {
  (void)size;
  const char *name = info->dlpi_name;
  const char *base = name ? strrchr(name, '/') : NULL;
  base = base ? base + 1 : name;
  if (base && strncmp(base, "libllama.", 9) == 0) {
    *(const char **)out = name;
    return 1;
  }
  return 0;
}

/* Called under `lock`. */
static void resolve(void) {
  if (api.resolved) return;
  api.resolved = true;
  const char *path = NULL;
  dl_iterate_phdr(find_libllama, &path);
  void *lib = path ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : NULL;
  if (!lib) {
    api.error = "libllama is not loaded";
    return;
  }
  api.logits_ith = (logits_ith_fn)dlsym(lib, "llama_get_logits_ith");
  api.get_model = (get_model_fn)dlsym(lib, "llama_get_model");
  api.model_vocab = (model_vocab_fn)dlsym(lib, "llama_model_get_vocab");
  api.vocab_n_tokens = (vocab_n_tokens_fn)dlsym(lib, "llama_vocab_n_tokens");
  if (!api.logits_ith || !api.get_model || !api.model_vocab || !api.vocab_n_tokens) api.logits_ith = NULL;
  api.set_n_threads = (set_n_threads_fn)dlsym(lib, "llama_set_n_threads");
  api.n_threads = (n_threads_fn)dlsym(lib, "llama_n_threads");
  api.n_threads_batch = (n_threads_fn)dlsym(lib, "llama_n_threads_batch");
  api.free = (free_fn)dlsym(lib, "llama_free");
  api.attach = (attach_fn)dlsym(lib, "llama_attach_threadpool");
  api.params_default = (params_default_fn)dlsym(lib, "ggml_threadpool_params_default");
  dev_by_type_fn dev_by_type = (dev_by_type_fn)dlsym(lib, "ggml_backend_dev_by_type");
  dev_reg_fn dev_reg = (dev_reg_fn)dlsym(lib, "ggml_backend_dev_backend_reg");
  proc_address_fn proc = (proc_address_fn)dlsym(lib, "ggml_backend_reg_get_proc_address");
  if (!api.set_n_threads || !api.n_threads || !api.n_threads_batch || !api.free) {
    api.error = "libllama lacks llama_set_n_threads, llama_n_threads(_batch) or llama_free";
    return;
  }
  if (!api.attach || !api.params_default || !dev_by_type || !dev_reg || !proc) {
    api.error = "libllama lacks the thread pool API";
    return;
  }
  ggml_backend_dev_t cpu = dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  ggml_backend_reg_t reg = cpu ? dev_reg(cpu) : NULL;
  api.pool_new = reg ? (pool_new_fn)proc(reg, "ggml_threadpool_new") : NULL;
  api.pool_free = reg ? (pool_free_fn)proc(reg, "ggml_threadpool_free") : NULL;
  if (!api.pool_new || !api.pool_free) {
    api.error = "the CPU backend exports no ggml_threadpool_new";
    return;
  }
  /* The mirrored struct must match: ggml's defaults are n_threads as given, normal priority, poll 50. */
  struct ggml_threadpool_params p = api.params_default(3);
  if (p.n_threads != 3 || p.prio != 0 || p.poll != 50 || p.strict_cpu || p.paused) {
    api.error = "ggml_threadpool_params does not have the layout this library was written for";
  }
}

/* Only the addon calls these, after loading libllama, so its functions are always found; if not,
 * nothing correct can be returned. */
static void unresolved(const char *name) {
  fprintf(stderr, "persistent-threadpool: %s called but libllama's was not found (%s)\n", name, api.error ? api.error : "?");
  abort();
}

static int slot_of(struct llama_context *ctx) {
  for (int i = 0; i < attached_count; i++)
    if (attached[i].ctx == ctx) return i;
  return -1;
}

/* Called under `lock`: gives ctx a pool of at least `want` threads where it has none that big. */
static void ensure_pool(struct llama_context *ctx, int want) {
  if (api.error || want < 2) return;
  int i = slot_of(ctx);
  if (i >= 0 && attached[i].threads >= want) return;
  if (i < 0 && attached_count == MAX_CONTEXTS) return; /* cannot remember it: leave it per-call */
  struct ggml_threadpool_params p = api.params_default(want);
  p.poll = poll_level;
  struct ggml_threadpool *pool = api.pool_new(&p);
  if (!pool) return;
  api.attach(ctx, pool, NULL);
  pools_made++;
  if (i >= 0) {
    api.pool_free(attached[i].pool);
  } else {
    i = attached_count++;
  }
  attached[i].ctx = ctx;
  attached[i].pool = pool;
  attached[i].threads = want;
}

int32_t llama_n_threads(struct llama_context *ctx) {
  pthread_mutex_lock(&lock);
  resolve();
  n_threads_fn real = api.n_threads;
  if (!real) unresolved("llama_n_threads");
  int32_t n = real(ctx), nb = api.n_threads_batch(ctx);
  ensure_pool(ctx, n > nb ? n : nb);
  pthread_mutex_unlock(&lock);
  last_threads_ctx = ctx;
  return n;
}

void llama_set_n_threads(struct llama_context *ctx, int32_t n_threads, int32_t n_threads_batch) {
  pthread_mutex_lock(&lock);
  resolve();
  set_n_threads_fn real = api.set_n_threads;
  if (!real) unresolved("llama_set_n_threads");
  ensure_pool(ctx, n_threads > n_threads_batch ? n_threads : n_threads_batch);
  pthread_mutex_unlock(&lock);
  real(ctx, n_threads, n_threads_batch);
}

void llama_free(struct llama_context *ctx) {
  pthread_mutex_lock(&lock);
  resolve();
  free_fn real = api.free;
  if (!real) unresolved("llama_free");
  int i = slot_of(ctx);
  struct ggml_threadpool *pool = NULL;
  if (i >= 0) {
    pool = attached[i].pool;
    attached[i] = attached[--attached_count];
  }
  pthread_mutex_unlock(&lock);
  real(ctx);
  if (pool) api.pool_free(pool);
}

/* ---- Node-API: configure(poll) and stats() ---- */

static napi_value configure(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  uint32_t poll = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_uint32(env, argv[0], &poll) != napi_ok || poll > 100) {
    napi_throw_range_error(env, NULL, "configure(poll): poll is an integer 0-100");
    return NULL;
  }
  pthread_mutex_lock(&lock);
  poll_level = poll;
  pthread_mutex_unlock(&lock);
  return NULL;
}

static napi_value stats(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_mutex_lock(&lock);
  int contexts = attached_count, threads = 0;
  for (int i = 0; i < attached_count; i++) threads += attached[i].threads;
  double made = (double)pools_made;
  const char *error = api.error;
  pthread_mutex_unlock(&lock);
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_int32(env, contexts, &v);
  napi_set_named_property(env, out, "contexts", v);
  napi_create_int32(env, threads, &v);
  napi_set_named_property(env, out, "threads", v);
  napi_create_double(env, made, &v);
  napi_set_named_property(env, out, "poolsMade", v);
  if (error) {
    napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, out, "error", v);
  }
  return out;
}

/* lastContext(): this thread's last llama_n_threads context as a BigInt handle, 0n if none. */
static napi_value last_context(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)last_threads_ctx, &out);
  return out;
}

/*
 * argmax(context, logitIndex, banned): the token llama.cpp's greedy sampler would pick from the
 * logits at logitIndex of the context's last decode (the first highest logit, as its `>` scan
 * keeps), skipping the tokens in `banned` (a Uint32Array: the end-of-generation ban, which the
 * native chain applies as a -Infinity bias). -2 when it cannot answer (no such logits here).
 */
static napi_value argmax(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  uint64_t handle = 0;
  bool lossless = false;
  int32_t index = 0, best = -2;
  const uint32_t *banned = NULL;
  size_t n_banned = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_bigint_uint64(env, argv[0], &handle, &lossless) != napi_ok ||
      napi_get_value_int32(env, argv[1], &index) != napi_ok) {
    napi_throw_type_error(env, NULL, "argmax(context: bigint, logitIndex: number, banned: Uint32Array)");
    return NULL;
  }
  napi_typedarray_type type;
  void *data = NULL;
  if (napi_get_typedarray_info(env, argv[2], &type, &n_banned, &data, NULL, NULL) != napi_ok || type != napi_uint32_array) {
    napi_throw_type_error(env, NULL, "argmax: banned must be a Uint32Array");
    return NULL;
  }
  banned = (const uint32_t *)data;
  struct llama_context *ctx = (struct llama_context *)(uintptr_t)handle;
  const float *logits = ctx && api.logits_ith ? api.logits_ith(ctx, index) : NULL;
  if (logits) {
    int32_t n = api.vocab_n_tokens(api.model_vocab(api.get_model(ctx)));
    float top = 0;
    for (int32_t t = 0; t < n; t++) {
      float v = logits[t];
      if (best >= 0 && !(v > top)) continue;
      bool skip = false;
      for (size_t b = 0; b < n_banned; b++) skip |= banned[b] == (uint32_t)t;
      if (skip) continue;
      best = t;
      top = v;
    }
    if (best < 0) best = -2;
  }
  napi_create_int32(env, best, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "configure", NAPI_AUTO_LENGTH, configure, NULL, &fn);
  napi_set_named_property(env, exports, "configure", fn);
  napi_create_function(env, "stats", NAPI_AUTO_LENGTH, stats, NULL, &fn);
  napi_set_named_property(env, exports, "stats", fn);
  napi_create_function(env, "lastContext", NAPI_AUTO_LENGTH, last_context, NULL, &fn);
  napi_set_named_property(env, exports, "lastContext", fn);
  napi_create_function(env, "argmax", NAPI_AUTO_LENGTH, argmax, NULL, &fn);
  napi_set_named_property(env, exports, "argmax", fn);
  return exports;
}
