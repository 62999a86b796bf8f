/*
 * nvmlsim: a simulated NVIDIA Management Library (libnvidia-ml.so.1) for doerunner's tests.
 *
 * Build (tests/nvmlsim/__init__.py does this, cached by source hash):
 *   gcc -shared -fPIC -O2 -ffp-contract=off -Wl,-soname,libnvidia-ml.so.1 \
 *       -o DIR/libnvidia-ml.so.1 nvmlsim.c -lm -lpthread
 * and put DIR on LD_LIBRARY_PATH before Python starts: nvidia-ml-py dlopens "libnvidia-ml.so.1"
 * at nvmlInit, and the real nvidia-ml-py runs unmodified against this file.
 *
 * Every value is a pure function of the scenario (environment variables, read at the first
 * nvmlInit, and again whenever init follows a full shutdown) and the wall clock: no shared state
 * between processes, and after init the data are read-only, so any number of threads and
 * processes may use it at once. tests/nvmlsim/__init__.py (class Profile) computes the same
 * functions in Python; keep the two in step.
 *
 * Scenario (times t are seconds since T0; "pwl" = piecewise-linear "t:v,t:v,..." where a step is
 * two points at the same t, the value is constant before the first and after the last point):
 *   NVMLSIM_FAIL_INIT=1           nvmlInit* returns NVML_ERROR_DRIVER_NOT_LOADED
 *   NVMLSIM_GPUS=N                number of GPUs (default 1, at most 16)
 *   NVMLSIM_T0=<epoch s>          origin of all profiles (CLOCK_REALTIME); default: first init
 *   NVMLSIM_ENERGY_RES_S=s        the energy counter advances only at multiples of s (default 0.01)
 *   NVMLSIM_NO_EVENT_REASONS=1    nvmlDeviceGetCurrentClocksEventReasons is "not found" (an old
 *                                 driver): callers must fall back to ...ThrottleReasons
 *   NVMLSIM_LATENCY_S=s           every device call sleeps s seconds first (a slow driver)
 * Build variant: compiled with -DNVMLSIM_OLD_DRIVER the library does not export
 * nvmlDeviceGetFieldValues, nvmlDeviceGetCurrentClocksEventReasons nor the MIG calls, like a
 * driver older than R450: nvidia-ml-py then raises NVMLError_FunctionNotFound for them.
 * Per GPU i (0-based):
 *   NVMLSIM_GPU{i}_POWER=pwl      power in W (default "0:60", a constant 60 W)
 *   NVMLSIM_GPU{i}_SPIKES="period_s:width_s:extra_w[:phase_s]"
 *                                 adds extra_w during [phase + k*period, phase + k*period + width)
 *                                 for every k >= 0
 *   NVMLSIM_GPU{i}_AVG_WINDOW_S=s nvmlDeviceGetPowerUsage = mean power over [t - s, t] in mW, like
 *                                 Ampere and newer (default 1.0; 0 = instantaneous)
 *   NVMLSIM_GPU{i}_NO_ENERGY=1    nvmlDeviceGetTotalEnergyConsumption -> NVML_ERROR_NOT_SUPPORTED
 *   NVMLSIM_GPU{i}_NO_INSTANT=1   field NVML_FI_DEV_POWER_INSTANT -> NOT_SUPPORTED (per field)
 *   NVMLSIM_GPU{i}_TEMP=pwl       temperature in C (default 30 + 0.1 * instantaneous power)
 *   NVMLSIM_GPU{i}_THROTTLE="t0:t1:mask;t0:t1:mask"
 *                                 clock-event reason bitmasks (real NVML bits: idle 0x1, app clocks
 *                                 0x2, SW power cap 0x4, HW slowdown 0x8, sync boost 0x10, SW thermal
 *                                 0x20, HW thermal 0x40, HW power brake 0x80) OR-ed over the windows
 *                                 [t0, t1) that hold t
 *   NVMLSIM_GPU{i}_MEM_USED_MB=pwl memory used in MiB (default 1024 + 40 * util)
 *   NVMLSIM_GPU{i}_NAME=str       default "NVIDIA H100 80GB HBM3"
 *   NVMLSIM_GPU{i}_MIG=0|1|na     MIG mode disabled (default) / enabled / not supported
 *   NVMLSIM_GPU{i}_MIG_INSTANCES=n with MIG enabled: n MIG devices (default 2), UUIDs
 *                                 MIG-5151a000-0000-4000-9000-<i as 6 hex><k as 6 hex>; a MIG
 *                                 handle gives its UUID, name and parent, nothing to measure;
 *                                 utilisation of a MIG-enabled GPU is NOT_SUPPORTED (as on real
 *                                 hardware)
 *   NVMLSIM_GPU{i}_ENERGY_PERIOD_S=s, NVMLSIM_GPU{i}_ENERGY_PHASE_S=s
 *                                 the counter updates at phase + k * period (default: the global
 *                                 NVMLSIM_ENERGY_RES_S, phase 0), holding the energy up to then
 *   NVMLSIM_GPU{i}_ENERGY_RESET_AT=t  the counter restarts from 0 at t (a driver reload)
 *   NVMLSIM_GPU{i}_ENERGY_FROZEN_AT=t the counter stops updating at t (keeps its last value)
 *   NVMLSIM_GPU{i}_PCI_BUS=n      PCI bus number (default 0x1b + 0x10 * i): CUDA's PCI_BUS_ID
 *                                 order, which may differ from NVML's index order
 *   NVMLSIM_GPU{i}_NO_PERMISSION=1 nvmlDeviceGetHandleByIndex -> NVML_ERROR_NO_PERMISSION
 *   NVMLSIM_GPU{i}_POWER_LIMIT_W=w enforced power limit (default 700); with
 *   NVMLSIM_GPU{i}_CAPPED=1       the SW power cap reason (0x4) is set whenever instantaneous
 *                                 power is within 1 W of the limit (a GPU held at its cap)
 *   NVMLSIM_GPU{i}_MODULE_EXTRA_W=w a Grace Hopper-like module: the CPU and memory add w watts;
 *                                 module-scope power (field scopeId 1) and the energy counter
 *                                 cover the module (GPU + w), GPU-scope power does not
 *   NVMLSIM_GPU{i}_NO_GPU_SCOPE=1 power fields at GPU scope (scopeId 0) -> NOT_SUPPORTED
 *
 * Derived values: power readings in mW are rounded to nearest; temperature and utilisation are
 * floor(x + 0.5); utilisation = min(100, power / 7) %, memory utilisation = util / 2; the energy
 * counter is floor(5e8 + 1000 * integral of power from 0 to the last update) mJ. Fixed:
 * memory total 81559 MiB, UUID GPU-5151a000-0000-4000-8000-<i as 12 hex digits>, driver 550.54.15,
 * CUDA driver 12040, NVML 12.550.54.15, power limit constraints 200000..700000 mW, SM
 * and graphics clock 1980 MHz (1410 MHz while a reason other than GPU idle is active), memory clock
 * 2619 MHz, video clock 1755 MHz.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

#define NVML_VALUE_TYPE_UNSIGNED_INT 1
#define NVML_VALUE_TYPE_UNSIGNED_LONG_LONG 3
#define NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION 83
#define NVML_FI_DEV_POWER_AVERAGE 185
#define NVML_FI_DEV_POWER_INSTANT 186
#define NVML_MEMORY_V2 0x02000028u
#define NVML_TEMPERATURE_V1 0x0100000Cu

#define MAX_GPUS 16
#define MAX_MIG 7
#define ENERGY_OFFSET_MJ 5e8
#define MIB 1048576.0
#define MEM_TOTAL_MIB 81559ull
#define POWER_LIMIT_MW 700000u
#define DRIVER_VERSION "550.54.15"
#define NVML_VERSION "12.550.54.15"
#define CUDA_DRIVER_VERSION 12040

/* Layouts exactly as nvidia-ml-py declares them (c_nvmlMemory_t, c_nvmlMemory_v2_t,
 * c_nvmlUtilization_t, c_nvmlValue_t, c_nvmlFieldValue_t, c_nvmlTemperature_v1_t). */
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef union {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    long long sllVal;
    int siVal;
    unsigned short usVal;
} nvmlValue_t;
typedef struct {
    uint32_t fieldId;
    uint32_t scopeId;
    int64_t timestamp;   /* CPU timestamp, microseconds since the epoch */
    int64_t latencyUsec;
    unsigned int valueType;
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;
typedef struct {
    unsigned int version;
    unsigned int sensorType;
    int temperature;
} nvmlTemperature_v1_t;

typedef struct {
    int n;          /* 0 = not given */
    double *t, *v;
    double *cum;    /* cum[k] = integral of the curve from t[0] to t[k] */
} pwl_t;

typedef struct { double t0, t1; unsigned long long mask; } window_t;

/* As nvidia-ml-py's nvmlPciInfo_t. */
typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct nvmlDevice_st {
    unsigned int index;
    char name[96];
    char uuid[96];
    pwl_t power, temp, mem;
    int has_spikes;
    double sp_period, sp_width, sp_extra, sp_phase;
    double avg_window_s;
    int no_energy, no_instant;
    int mig;        /* 0 disabled, 1 enabled, -1 not supported */
    int n_thr;
    window_t *thr;
    double energy_period_s, energy_phase_s;
    double reset_at, frozen_at;   /* NAN: never */
    unsigned int pci_bus;
    int no_permission, capped, no_gpu_scope;
    double power_limit_w, module_extra_w;
    int n_mig;
    struct nvmlDevice_st *parent;  /* a MIG device: its GPU; NULL for a GPU */
} gpu_t;
typedef gpu_t *nvmlDevice_t;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_refcount;          /* read with __atomic_load_n outside the lock */
static int g_ngpus;
static gpu_t g_gpus[MAX_GPUS];
static gpu_t g_migs[MAX_GPUS * MAX_MIG];
static double g_latency_s;
static double g_t0;
static int g_t0_from_first_init;
static double g_energy_res_s;
static int g_no_event_reasons;

/* ---------- time ---------- */

static double now_epoch(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* the same arithmetic as CPython's time.time(): nanoseconds as a double, divided by 1e9 */
    double ns = (double)((int64_t)ts.tv_sec * 1000000000LL + (int64_t)ts.tv_nsec);
    return ns / 1e9;
}

static double now_rel(void) { return now_epoch() - g_t0; }

/* ---------- piecewise-linear curves ---------- */

static int pwl_last_le(const pwl_t *p, double t) { /* last k with t[k] <= t; t[0] <= t given */
    int lo = 0, hi = p->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (p->t[mid] <= t) lo = mid; else hi = mid - 1;
    }
    return lo;
}

static double pwl_value(const pwl_t *p, double t) {
    int n = p->n;
    if (t < p->t[0]) return p->v[0];
    if (t >= p->t[n - 1]) return p->v[n - 1];
    int k = pwl_last_le(p, t);
    double seg = p->t[k + 1] - p->t[k];
    return p->v[k] + (p->v[k + 1] - p->v[k]) * ((t - p->t[k]) / seg);
}

static double pwl_cum(const pwl_t *p, double t) { /* integral from t[0] to t (negative before) */
    int n = p->n;
    if (t <= p->t[0]) return p->v[0] * (t - p->t[0]);
    if (t >= p->t[n - 1]) return p->cum[n - 1] + p->v[n - 1] * (t - p->t[n - 1]);
    int k = pwl_last_le(p, t);
    double dt = t - p->t[k];
    double seg = p->t[k + 1] - p->t[k];
    double vt = p->v[k] + (p->v[k + 1] - p->v[k]) * (dt / seg);
    return p->cum[k] + 0.5 * (p->v[k] + vt) * dt;
}

static void pwl_free(pwl_t *p) {
    free(p->t); free(p->v); free(p->cum);
    memset(p, 0, sizeof *p);
}

/* Parse "t:v,t:v,...": 0 on success, -1 on a malformed or unsorted list. */
static int pwl_parse(pwl_t *p, const char *s) {
    memset(p, 0, sizeof *p);
    int cap = 1;
    for (const char *c = s; *c; c++) cap += (*c == ',');
    p->t = calloc(cap, sizeof(double));
    p->v = calloc(cap, sizeof(double));
    p->cum = calloc(cap, sizeof(double));
    if (!p->t || !p->v || !p->cum) return -1;
    const char *c = s;
    char *end;
    while (*c) {
        while (*c == ' ') c++;
        if (!*c) break;
        double t = strtod(c, &end);
        if (end == c || *end != ':') return -1;
        c = end + 1;
        double v = strtod(c, &end);
        if (end == c) return -1;
        c = end;
        while (*c == ' ') c++;
        if (p->n > 0 && t < p->t[p->n - 1]) return -1;
        p->t[p->n] = t;
        p->v[p->n] = v;
        p->n++;
        if (*c == ',') c++;
        else if (*c) return -1;
    }
    if (p->n == 0) return -1;
    p->cum[0] = 0.0;
    for (int k = 0; k + 1 < p->n; k++)
        p->cum[k + 1] = p->cum[k] + 0.5 * (p->v[k] + p->v[k + 1]) * (p->t[k + 1] - p->t[k]);
    return 0;
}

/* ---------- the power model ---------- */

static double spikes_value(const gpu_t *g, double t) {
    if (!g->has_spikes) return 0.0;
    double u = t - g->sp_phase;
    if (u < 0.0) return 0.0;
    double r = u - floor(u / g->sp_period) * g->sp_period;
    return r < g->sp_width ? g->sp_extra : 0.0;
}

static double spikes_cum(const gpu_t *g, double t) { /* integral of the spikes from phase to t */
    if (!g->has_spikes) return 0.0;
    double u = t - g->sp_phase;
    if (u <= 0.0) return 0.0;
    double k = floor(u / g->sp_period);
    double r = u - k * g->sp_period;
    return g->sp_extra * (k * g->sp_width + fmin(r, g->sp_width));
}

static double power_w(const gpu_t *g, double t) {
    return pwl_value(&g->power, t) + spikes_value(g, t);
}

/* Energy in J from 0 (T0) to t. */
static double energy_j(const gpu_t *g, double t) {
    return (pwl_cum(&g->power, t) - pwl_cum(&g->power, 0.0))
         + (spikes_cum(g, t) - spikes_cum(g, 0.0));
}

static double avg_power_w(const gpu_t *g, double t) {
    double w = g->avg_window_s;
    if (w <= 0.0) return power_w(g, t);
    return (energy_j(g, t) - energy_j(g, t - w)) / w;
}

/* Energy in J from 0 to t of what the counter covers: the GPU, or the module (GPU + extra). */
static double counted_j(const gpu_t *g, double t) {
    return energy_j(g, t) + g->module_extra_w * t;
}

static unsigned long long counter_mj(const gpu_t *g, double t) {
    if (!isnan(g->frozen_at) && t > g->frozen_at) t = g->frozen_at;
    double p = g->energy_period_s, ph = g->energy_phase_s;
    double tq = p > 0.0 ? ph + floor((t - ph) / p) * p : t;
    double mj;
    if (!isnan(g->reset_at) && tq >= g->reset_at)
        mj = floor(1000.0 * (counted_j(g, tq) - counted_j(g, g->reset_at)));
    else
        mj = floor(ENERGY_OFFSET_MJ + 1000.0 * counted_j(g, tq));
    return mj < 0.0 ? 0ull : (unsigned long long)mj;
}

static unsigned int round_half_up(double x) { /* floor(x + 0.5), clamped at 0 */
    double r = floor(x + 0.5);
    return r < 0.0 ? 0u : (unsigned int)r;
}

static unsigned int util_pct(const gpu_t *g, double t) {
    double u = power_w(g, t) / 7.0;
    return round_half_up(u > 100.0 ? 100.0 : u);
}

static double mem_used_mib(const gpu_t *g, double t) {
    double mb = g->mem.n ? pwl_value(&g->mem, t) : 1024.0 + 40.0 * util_pct(g, t);
    if (mb < 0.0) mb = 0.0;
    if (mb > (double)MEM_TOTAL_MIB) mb = (double)MEM_TOTAL_MIB;
    return mb;
}

static unsigned long long throttle_mask(const gpu_t *g, double t) {
    unsigned long long m = 0;
    if (g->capped && power_w(g, t) >= g->power_limit_w - 1.0) m |= 0x4ull;
    for (int k = 0; k < g->n_thr; k++)
        if (g->thr[k].t0 <= t && t < g->thr[k].t1) m |= g->thr[k].mask;
    return m;
}

/* ---------- scenario ---------- */

static const char *env_gpu(int i, const char *what) {
    char key[64];
    snprintf(key, sizeof key, "NVMLSIM_GPU%d_%s", i, what);
    const char *v = getenv(key);
    return (v && *v) ? v : NULL;
}

static int env_flag(const char *v) { return v && strcmp(v, "0") != 0; }

static void free_scenario(void) {
    for (int i = 0; i < MAX_GPUS; i++) {
        pwl_free(&g_gpus[i].power);
        pwl_free(&g_gpus[i].temp);
        pwl_free(&g_gpus[i].mem);
        free(g_gpus[i].thr);
        memset(&g_gpus[i], 0, sizeof g_gpus[i]);
    }
    memset(g_migs, 0, sizeof g_migs);
    g_ngpus = 0;
}

static int bad(const char *var, const char *value) {
    fprintf(stderr, "nvmlsim: cannot parse %s=%s\n", var, value);
    return -1;
}

static int parse_throttle(gpu_t *g, const char *s) {
    int cap = 1;
    for (const char *c = s; *c; c++) cap += (*c == ';');
    g->thr = calloc(cap, sizeof(window_t));
    if (!g->thr) return -1;
    const char *c = s;
    char *end;
    while (*c) {
        window_t w;
        w.t0 = strtod(c, &end);
        if (end == c || *end != ':') return -1;
        c = end + 1;
        w.t1 = strtod(c, &end);
        if (end == c || *end != ':') return -1;
        c = end + 1;
        w.mask = strtoull(c, &end, 0);
        if (end == c) return -1;
        c = end;
        g->thr[g->n_thr++] = w;
        if (*c == ';') c++;
        else if (*c) return -1;
    }
    return 0;
}

static int load_gpu(int i) {
    gpu_t *g = &g_gpus[i];
    const char *v;
    char var[64];
    g->index = (unsigned)i;
    v = env_gpu(i, "NAME");
    snprintf(g->name, sizeof g->name, "%s", v ? v : "NVIDIA H100 80GB HBM3");
    snprintf(g->uuid, sizeof g->uuid, "GPU-5151a000-0000-4000-8000-%012x", (unsigned)i);

    snprintf(var, sizeof var, "NVMLSIM_GPU%d_POWER", i);
    v = env_gpu(i, "POWER");
    if (pwl_parse(&g->power, v ? v : "0:60") != 0) return bad(var, v);

    if ((v = env_gpu(i, "SPIKES"))) {
        snprintf(var, sizeof var, "NVMLSIM_GPU%d_SPIKES", i);
        double a[4] = {0, 0, 0, 0};
        int n = 0;
        const char *c = v;
        char *end;
        while (n < 4) {
            a[n] = strtod(c, &end);
            if (end == c) return bad(var, v);
            n++;
            if (*end == ':') c = end + 1;
            else if (*end == '\0') break;
            else return bad(var, v);
        }
        if (n < 3 || a[0] <= 0.0 || a[1] < 0.0) return bad(var, v);
        g->has_spikes = 1;
        g->sp_period = a[0];
        g->sp_width = a[1] < a[0] ? a[1] : a[0];
        g->sp_extra = a[2];
        g->sp_phase = a[3];
    }
    v = env_gpu(i, "AVG_WINDOW_S");
    g->avg_window_s = v ? strtod(v, NULL) : 1.0;
    g->no_energy = env_flag(env_gpu(i, "NO_ENERGY"));
    g->no_instant = env_flag(env_gpu(i, "NO_INSTANT"));
    if ((v = env_gpu(i, "TEMP"))) {
        snprintf(var, sizeof var, "NVMLSIM_GPU%d_TEMP", i);
        if (pwl_parse(&g->temp, v) != 0) return bad(var, v);
    }
    if ((v = env_gpu(i, "MEM_USED_MB"))) {
        snprintf(var, sizeof var, "NVMLSIM_GPU%d_MEM_USED_MB", i);
        if (pwl_parse(&g->mem, v) != 0) return bad(var, v);
    }
    if ((v = env_gpu(i, "THROTTLE"))) {
        snprintf(var, sizeof var, "NVMLSIM_GPU%d_THROTTLE", i);
        if (parse_throttle(g, v) != 0) return bad(var, v);
    }
    v = env_gpu(i, "MIG");
    g->mig = !v ? 0 : (strcmp(v, "na") == 0 ? -1 : env_flag(v));
    v = env_gpu(i, "ENERGY_PERIOD_S");
    g->energy_period_s = v ? strtod(v, NULL) : g_energy_res_s;
    v = env_gpu(i, "ENERGY_PHASE_S");
    g->energy_phase_s = v ? strtod(v, NULL) : 0.0;
    v = env_gpu(i, "ENERGY_RESET_AT");
    g->reset_at = v ? strtod(v, NULL) : NAN;
    v = env_gpu(i, "ENERGY_FROZEN_AT");
    g->frozen_at = v ? strtod(v, NULL) : NAN;
    v = env_gpu(i, "PCI_BUS");
    g->pci_bus = v ? (unsigned)strtoul(v, NULL, 0) : 0x1bu + 0x10u * (unsigned)i;
    g->no_permission = env_flag(env_gpu(i, "NO_PERMISSION"));
    g->capped = env_flag(env_gpu(i, "CAPPED"));
    g->no_gpu_scope = env_flag(env_gpu(i, "NO_GPU_SCOPE"));
    v = env_gpu(i, "POWER_LIMIT_W");
    g->power_limit_w = v ? strtod(v, NULL) : POWER_LIMIT_MW / 1000.0;
    v = env_gpu(i, "MODULE_EXTRA_W");
    g->module_extra_w = v ? strtod(v, NULL) : 0.0;
    g->n_mig = 0;
    if (g->mig == 1) {
        v = env_gpu(i, "MIG_INSTANCES");
        int n = v ? atoi(v) : 2;
        g->n_mig = n < 0 ? 0 : (n > MAX_MIG ? MAX_MIG : n);
        for (int k = 0; k < g->n_mig; k++) {
            gpu_t *m = &g_migs[i * MAX_MIG + k];
            memset(m, 0, sizeof *m);
            m->index = (unsigned)k;
            m->parent = g;
            snprintf(m->name, sizeof m->name, "%s MIG 1g.10gb", g->name);
            snprintf(m->uuid, sizeof m->uuid, "MIG-5151a000-0000-4000-9000-%06x%06x",
                     (unsigned)i, (unsigned)k);
        }
    }
    return 0;
}

static int load_scenario(void) {
    const char *v = getenv("NVMLSIM_GPUS");
    int n = (v && *v) ? atoi(v) : 1;
    if (n < 0) n = 0;
    if (n > MAX_GPUS) n = MAX_GPUS;
    v = getenv("NVMLSIM_T0");
    if (v && *v) {
        g_t0 = strtod(v, NULL);
    } else if (!g_t0_from_first_init) {
        g_t0 = now_epoch();
        g_t0_from_first_init = 1;
    }
    v = getenv("NVMLSIM_ENERGY_RES_S");
    g_energy_res_s = (v && *v) ? strtod(v, NULL) : 0.01;
    g_no_event_reasons = env_flag(getenv("NVMLSIM_NO_EVENT_REASONS"));
    v = getenv("NVMLSIM_LATENCY_S");
    g_latency_s = (v && *v) ? strtod(v, NULL) : 0.0;
    for (int i = 0; i < n; i++)
        if (load_gpu(i) != 0) { free_scenario(); return -1; }
    g_ngpus = n;
    return 0;
}

/* ---------- init / shutdown ---------- */

EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    if (env_flag(getenv("NVMLSIM_FAIL_INIT"))) return NVML_ERROR_DRIVER_NOT_LOADED;
    nvmlReturn_t ret = NVML_SUCCESS;
    pthread_mutex_lock(&g_lock);
    if (g_refcount == 0) {
        free_scenario();
        if (load_scenario() != 0) ret = NVML_ERROR_UNKNOWN;
    }
    if (ret == NVML_SUCCESS) __atomic_add_fetch(&g_refcount, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&g_lock);
    return ret;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
EXPORT nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

EXPORT nvmlReturn_t nvmlShutdown(void) {
    nvmlReturn_t ret = NVML_SUCCESS;
    pthread_mutex_lock(&g_lock);
    if (g_refcount == 0) ret = NVML_ERROR_UNINITIALIZED;
    else __atomic_sub_fetch(&g_refcount, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&g_lock);
    return ret;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument Version Mismatch";
    default: return "Unknown Error";
    }
}

static int initialized(void) { return __atomic_load_n(&g_refcount, __ATOMIC_ACQUIRE) > 0; }

static void latency(void) {
    if (g_latency_s <= 0.0) return;
    struct timespec ts = {(time_t)g_latency_s,
                          (long)((g_latency_s - floor(g_latency_s)) * 1e9)};
    nanosleep(&ts, NULL);
}

static int is_mig(nvmlDevice_t d) {
    uintptr_t p = (uintptr_t)d;
    return p >= (uintptr_t)&g_migs[0] && p < (uintptr_t)&g_migs[MAX_GPUS * MAX_MIG] &&
           d->parent != NULL;
}

/* A GPU handle (or, with allow_mig, a MIG device handle) and an output pointer. */
static nvmlReturn_t check_any(nvmlDevice_t d, const void *out, int allow_mig) {
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    latency();
    uintptr_t p = (uintptr_t)d, first = (uintptr_t)&g_gpus[0], end = (uintptr_t)&g_gpus[g_ngpus];
    if (!out) return NVML_ERROR_INVALID_ARGUMENT;
    if (p >= first && p < end) return NVML_SUCCESS;
    if (is_mig(d)) return allow_mig ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED;
    return NVML_ERROR_INVALID_ARGUMENT;
}

static nvmlReturn_t check(nvmlDevice_t d, const void *out) { return check_any(d, out, 0); }

static nvmlReturn_t copy_str(char *buf, unsigned int len, const char *s) {
    if (!buf) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(s) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buf, s, strlen(s) + 1);
    return NVML_SUCCESS;
}

/* ---------- system ---------- */

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    return copy_str(version, length, DRIVER_VERSION);
}

EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    return copy_str(version, length, NVML_VERSION);
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) {
    if (!v) return NVML_ERROR_INVALID_ARGUMENT;
    *v = CUDA_DRIVER_VERSION;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) {
    return nvmlSystemGetCudaDriverVersion(v);
}

/* ---------- device lookup ---------- */

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = (unsigned)g_ngpus;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!device || index >= (unsigned)g_ngpus) return NVML_ERROR_INVALID_ARGUMENT;
    if (g_gpus[index].no_permission) return NVML_ERROR_NO_PERMISSION;
    *device = &g_gpus[index];
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!uuid || !device) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < g_ngpus; i++) {
        if (strcmp(uuid, g_gpus[i].uuid) == 0) {
            if (g_gpus[i].no_permission) return NVML_ERROR_NO_PERMISSION;
            *device = &g_gpus[i];
            return NVML_SUCCESS;
        }
#ifndef NVMLSIM_OLD_DRIVER
        for (int k = 0; k < g_gpus[i].n_mig; k++)
            if (strcmp(uuid, g_migs[i * MAX_MIG + k].uuid) == 0) {
                *device = &g_migs[i * MAX_MIG + k];
                return NVML_SUCCESS;
            }
#endif
    }
    return NVML_ERROR_NOT_FOUND;
}

EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int *index) {
    nvmlReturn_t r = check(d, index);
    if (r) return r;
    *index = d->index;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length) {
    nvmlReturn_t r = check_any(d, name, 1);
    return r ? r : copy_str(name, length, d->name);
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length) {
    nvmlReturn_t r = check_any(d, uuid, 1);
    return r ? r : copy_str(uuid, length, d->uuid);
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci) {
    nvmlReturn_t r = check(d, pci);
    if (r) return r;
    memset(pci, 0, sizeof *pci);
    pci->bus = d->pci_bus;
    pci->pciDeviceId = 0x233010deu;
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "0000:%02X:00.0", d->pci_bus);
    snprintf(pci->busId, sizeof pci->busId, "00000000:%02X:00.0", d->pci_bus);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t d, nvmlPciInfo_t *pci) {
    return nvmlDeviceGetPciInfo_v3(d, pci);
}

#ifndef NVMLSIM_OLD_DRIVER
EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t d, unsigned int *is) {
    nvmlReturn_t r = check_any(d, is, 1);
    if (r) return r;
    *is = is_mig(d) ? 1u : 0u;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t m,
                                                                 nvmlDevice_t *device) {
    nvmlReturn_t r = check_any(m, device, 1);
    if (r) return r;
    if (!is_mig(m)) return NVML_ERROR_INVALID_ARGUMENT;
    *device = m->parent;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned int *count) {
    nvmlReturn_t r = check(d, count);
    if (r) return r;
    *count = d->mig == 1 ? MAX_MIG : 0u;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned int index,
                                                        nvmlDevice_t *m) {
    nvmlReturn_t r = check(d, m);
    if (r) return r;
    if (d->mig != 1) return NVML_ERROR_INVALID_ARGUMENT;
    if (index >= (unsigned)d->n_mig) return NVML_ERROR_NOT_FOUND;
    *m = &g_migs[d->index * MAX_MIG + index];
    return NVML_SUCCESS;
}
#endif

/* ---------- readings ---------- */

static void fill_memory(nvmlDevice_t d, unsigned long long *total, unsigned long long *free_,
                        unsigned long long *used) {
    unsigned long long tot = MEM_TOTAL_MIB * 1048576ull;
    unsigned long long u = (unsigned long long)floor(mem_used_mib(d, now_rel()) * MIB + 0.5);
    if (u > tot) u = tot;
    *total = tot;
    *used = u;
    *free_ = tot - u;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
    nvmlReturn_t r = check(d, m);
    if (r) return r;
    fill_memory(d, &m->total, &m->free, &m->used);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m) {
    nvmlReturn_t r = check(d, m);
    if (r) return r;
    if (m->version != NVML_MEMORY_V2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    fill_memory(d, &m->total, &m->free, &m->used);
    m->reserved = 0; /* the simulator reserves nothing, so v1 and v2 agree */
    return NVML_SUCCESS;
}

static unsigned int to_mw(double w) { return round_half_up(w * 1000.0); }

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
    nvmlReturn_t r = check(d, mw);
    if (r) return r;
    *mw = to_mw(avg_power_w(d, now_rel()));
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj) {
    nvmlReturn_t r = check(d, mj);
    if (r) return r;
    if (d->no_energy) return NVML_ERROR_NOT_SUPPORTED;
    *mj = counter_mj(d, now_rel());
    return NVML_SUCCESS;
}

#ifndef NVMLSIM_OLD_DRIVER
EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t d, int count, nvmlFieldValue_t *values) {
    nvmlReturn_t r = check(d, values);
    if (r) return r;
    if (count < 0) return NVML_ERROR_INVALID_ARGUMENT;
    double now = now_epoch();
    double t = now - g_t0;
    for (int k = 0; k < count; k++) {
        nvmlFieldValue_t *f = &values[k];
        f->timestamp = (int64_t)(now * 1e6);
        f->latencyUsec = 0;
        memset(&f->value, 0, sizeof f->value);
        f->nvmlReturn = NVML_SUCCESS;
        /* scope 0: the GPU; scope 1: the module (GPU + module_extra_w); others unsupported */
        int module = f->scopeId == 1;
        int power_field = f->fieldId == NVML_FI_DEV_POWER_INSTANT ||
                          f->fieldId == NVML_FI_DEV_POWER_AVERAGE;
        if (power_field && (f->scopeId > 1 || (f->scopeId == 0 && d->no_gpu_scope))) {
            f->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
            continue;
        }
        double extra = module ? d->module_extra_w : 0.0;
        switch (f->fieldId) {
        case NVML_FI_DEV_POWER_INSTANT:
            if (d->no_instant) { f->nvmlReturn = NVML_ERROR_NOT_SUPPORTED; break; }
            f->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
            f->value.uiVal = to_mw(power_w(d, t) + extra);
            break;
        case NVML_FI_DEV_POWER_AVERAGE:
            f->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
            f->value.uiVal = to_mw(avg_power_w(d, t) + extra);
            break;
        case NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION:
            if (d->no_energy) { f->nvmlReturn = NVML_ERROR_NOT_SUPPORTED; break; }
            f->valueType = NVML_VALUE_TYPE_UNSIGNED_LONG_LONG;
            f->value.ullVal = counter_mj(d, t);
            break;
        default:
            f->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        }
    }
    return NVML_SUCCESS;
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
    nvmlReturn_t r = check(d, u);
    if (r) return r;
    if (d->mig == 1) return NVML_ERROR_NOT_SUPPORTED;  /* as the NVML docs say of MIG mode */
    u->gpu = util_pct(d, now_rel());
    u->memory = u->gpu / 2;
    return NVML_SUCCESS;
}

static double temp_c(const gpu_t *g, double t) {
    return g->temp.n ? pwl_value(&g->temp, t) : 30.0 + 0.1 * power_w(g, t);
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, unsigned int sensor, unsigned int *c) {
    nvmlReturn_t r = check(d, c);
    if (r) return r;
    if (sensor != 0) return NVML_ERROR_INVALID_ARGUMENT;  /* only NVML_TEMPERATURE_GPU */
    *c = round_half_up(temp_c(d, now_rel()));
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperatureV(nvmlDevice_t d, nvmlTemperature_v1_t *temp) {
    nvmlReturn_t r = check(d, temp);
    if (r) return r;
    if (temp->version != NVML_TEMPERATURE_V1) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    if (temp->sensorType != 0) return NVML_ERROR_INVALID_ARGUMENT;
    temp->temperature = (int)round_half_up(temp_c(d, now_rel()));
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, unsigned int type, unsigned int *mhz) {
    nvmlReturn_t r = check(d, mhz);
    if (r) return r;
    int slowed = (throttle_mask(d, now_rel()) & ~1ull) != 0;
    switch (type) {
    case 0: /* graphics */
    case 1: /* SM */
        *mhz = slowed ? 1410 : 1980;
        return NVML_SUCCESS;
    case 2: *mhz = 2619; return NVML_SUCCESS;  /* memory */
    case 3: *mhz = 1755; return NVML_SUCCESS;  /* video */
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
}

#ifndef NVMLSIM_OLD_DRIVER
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d,
                                                           unsigned long long *reasons) {
    nvmlReturn_t r = check(d, reasons);
    if (r) return r;
    if (g_no_event_reasons) return NVML_ERROR_FUNCTION_NOT_FOUND;
    *reasons = throttle_mask(d, now_rel());
    return NVML_SUCCESS;
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d,
                                                              unsigned long long *reasons) {
    nvmlReturn_t r = check(d, reasons);
    if (r) return r;
    *reasons = throttle_mask(d, now_rel());
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t d, unsigned int *mw) {
    nvmlReturn_t r = check(d, mw);
    if (r) return r;
    *mw = to_mw(d->power_limit_w);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw) {
    return nvmlDeviceGetPowerManagementLimit(d, mw);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t d, unsigned int *mw) {
    return nvmlDeviceGetPowerManagementLimit(d, mw);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t d, unsigned int *lo,
                                                                 unsigned int *hi) {
    nvmlReturn_t r = check(d, lo);
    if (r) return r;
    if (!hi) return NVML_ERROR_INVALID_ARGUMENT;
    *lo = 200000;
    *hi = POWER_LIMIT_MW;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *current,
                                         unsigned int *pending) {
    nvmlReturn_t r = check(d, current);
    if (r) return r;
    if (!pending) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->mig < 0) return NVML_ERROR_NOT_SUPPORTED;
    *current = *pending = (unsigned)d->mig;
    return NVML_SUCCESS;
}
