/*
 * backprop.h: the C interface of libbackprop, a backpropagation engine.
 *
 * Two faces over one engine:
 *   - bp_graph: a computational graph with reverse-mode automatic differentiation. Build nodes
 *     (inputs, parameters, constants, ops), set values, run forward, run backward from a scalar,
 *     read values and gradients.
 *   - bp_net: a feed-forward network (dense layers, activations, a loss) that is a graph built for
 *     you, with the training loop's steps as separate calls.
 *
 * Conventions that hold for every function below:
 *   - Functions that can fail return bp_status; BP_OK is 0. On failure nothing was changed, and
 *     bp_last_error() describes what went wrong. Results are written through out-pointers, and only
 *     on success.
 *   - Handles are opaque. Every *_create has a *_free; freeing NULL is a no-op. A handle that was
 *     freed, or a pointer that is not a handle of the expected kind, is reported as
 *     BP_ERR_INVALID_HANDLE (the library never dereferences an unknown pointer).
 *   - Data crosses the boundary in caller-owned buffers with explicit element counts. The library
 *     copies what it needs during the call and keeps no caller pointer after it returns. A count
 *     or size above SIZE_MAX / 2, more than any memory can hold, is BP_ERR_OUT_OF_MEMORY.
 *   - Tensors are row-major. Shapes are arrays of size_t; rank 0 is a scalar, the largest rank is
 *     BP_MAX_RANK. Networks take minibatches with the batch as the leading dimension.
 *   - Thread safety: different handles may be used from different threads at the same time. A
 *     handle used from two threads at once makes one of the calls fail with BP_ERR_BUSY; it is never
 *     corrupted. bp_last_error() is per thread.
 *   - Strings returned by the library are owned by it; do not free them.
 */
#ifndef BACKPROP_H
#define BACKPROP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Version
 * ------------------------------------------------------------------------------------------- */

/* The version of this header, MAJOR.MINOR.PATCH. Within one MAJOR version (one SONAME,
 * libbackprop.so.MAJOR) releases only add: functions, types, enum constants, and fields at the
 * end of size-prefixed structs. A program built against an older header of the same MAJOR
 * version runs with a newer library. */
#define BP_VERSION_MAJOR 0
#define BP_VERSION_MINOR 1
#define BP_VERSION_PATCH 0
#define BP_VERSION_STRING "0.1.0"
/* One number that orders versions: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define BP_VERSION_NUMBER (BP_VERSION_MAJOR * 10000 + BP_VERSION_MINOR * 100 + BP_VERSION_PATCH)

/* The version of the library that is loaded, as "MAJOR.MINOR.PATCH". Compare it with
 * BP_VERSION_STRING to detect a header/library mismatch. Never fails. */
const char *bp_version(void);

/* The loaded library's BP_VERSION_NUMBER. Never fails. */
unsigned bp_version_number(void);

/* ---------------------------------------------------------------------------------------------
 * Status codes and errors
 * ------------------------------------------------------------------------------------------- */

/* What every fallible function returns: BP_OK, or why the call failed (and changed nothing).
 * bp_status_string names a status; bp_last_error says what went wrong. */
typedef enum bp_status {
    BP_OK = 0,                   /* success */
    BP_ERR_INVALID_ARGUMENT = 1, /* NULL pointer, wrong element count, unknown enum value, ... */
    BP_ERR_INVALID_HANDLE = 2,   /* NULL, freed or foreign handle, or a node id not in the graph */
    BP_ERR_SHAPE = 3,            /* shapes that an op cannot combine */
    BP_ERR_STATE = 4,            /* call out of order, e.g. backward before forward */
    BP_ERR_BUSY = 5,             /* the handle is in use by another thread */
    BP_ERR_OUT_OF_MEMORY = 6,    /* an allocation failed or a size is too large to represent */
    BP_ERR_NONFINITE = 7,        /* NaN or infinity where a finite number is required */
    BP_ERR_IO = 8,               /* a file could not be read or written */
    BP_ERR_FORMAT = 9,           /* a malformed, truncated or inconsistent checkpoint or data file */
    BP_ERR_INTERNAL = 10         /* a bug in the library: please report it */
} bp_status;

/* A short, constant name for a status ("BP_ERR_SHAPE: shape mismatch"). Unknown values give
 * "unknown status". Never fails; the string is static. */
const char *bp_status_string(bp_status status);

/* The message of the most recent failed call on the calling thread, or "" if there was none.
 * Owned by the library; valid until the next call into the library from this thread. Never
 * fails. */
const char *bp_last_error(void);

/* The number of threads the library's matrix products may use, for the whole process. A product
 * large enough to gain is cut into ranges of its output, computed at once on the calling thread
 * and on the library's worker threads (started when first needed; an idle worker spins for
 * 0.2 ms, then sleeps), by the library's own kernel (float32, on CPUs with AVX2 and FMA) or by
 * BLAS on one thread. The library's kernel gives the same bits at any thread count. When the
 * library first needs its thread count, it takes OpenBLAS's (one per CPU, or
 * OPENBLAS_NUM_THREADS) and sets OpenBLAS, which the process shares, to one thread: OpenBLAS's
 * own threading allocates memory for every product. Elementwise work runs on the calling
 * thread. More threads than the CPUs this process may run on (its affinity mask, as
 * sched_getaffinity gives it) are clamped to that number. A child forked while workers run
 * starts its own.
 * Errors: BP_ERR_INVALID_ARGUMENT (threads < 1). */
bp_status bp_set_num_threads(int threads);

/* The number of threads in effect: the last bp_set_num_threads after the clamp, or OpenBLAS's
 * default (one per CPU, or OPENBLAS_NUM_THREADS). Never fails. */
int bp_get_num_threads(void);

/* ---------------------------------------------------------------------------------------------
 * Element types and enumerations
 * ------------------------------------------------------------------------------------------- */

/* The largest rank (number of dimensions) of a tensor. */
#define BP_MAX_RANK 8

/* The element type of a graph. All values and gradients of a graph share it. */
typedef enum bp_dtype {
    BP_FLOAT32 = 0, /* float: the default */
    BP_FLOAT64 = 1  /* double: for gradient checks (bp_graph_check_gradients) */
} bp_dtype;

/* How a loss reduces its per-element (or per-sample) terms, as in PyTorch. */
typedef enum bp_reduction {
    BP_REDUCTION_MEAN = 0, /* the mean: a scalar */
    BP_REDUCTION_SUM = 1,  /* the sum: a scalar */
    BP_REDUCTION_NONE = 2  /* no reduction: one term per element (MSE) or per sample (cross-entropy) */
} bp_reduction;

/* ---------------------------------------------------------------------------------------------
 * Graph: nodes, ops, forward and backward
 *
 * A graph is built once and run many times. Nodes are identified by bp_node ids, valid only in
 * the graph that made them. Leaves are inputs (values set by the caller, gradients computed),
 * parameters (the same, and what optimizers update; they start at zero) and constants (values
 * set by the caller, no gradient). Ops make new nodes from existing ones, so the order of
 * creation is a topological order. Shapes are checked when a node is added: a mismatch fails
 * with BP_ERR_SHAPE, names the op and both shapes, and leaves the graph as it was.
 *
 * Gradients follow PyTorch: bp_graph_backward adds (+=) into the gradients of the leaves, so
 * they accumulate across calls until bp_graph_zero_grad; gradients of op nodes hold the result
 * of the latest backward only. A node used by several consumers receives the sum of their
 * contributions.
 * ------------------------------------------------------------------------------------------- */

/* A graph (opaque): made by bp_graph_create and freed by bp_graph_free, or owned by a network
 * (bp_net_graph). A node is an id that the graph which returned it understands; other graphs
 * reject it with BP_ERR_INVALID_HANDLE. */
typedef struct bp_graph bp_graph;
typedef int32_t bp_node;

/* Creates an empty graph whose values and gradients have element type `dtype`.
 * Errors: BP_ERR_INVALID_ARGUMENT (out is NULL, unknown dtype). */
bp_status bp_graph_create(bp_dtype dtype, bp_graph **out);

/* Frees a graph and everything in it. NULL is a no-op (BP_OK). A graph owned by a network
 * (see bp_net_graph) cannot be freed here. Errors: BP_ERR_INVALID_HANDLE (freed, foreign or
 * owned by a network), BP_ERR_BUSY. */
bp_status bp_graph_free(bp_graph *graph);

/* The element type of the graph, through *out. Errors: BP_ERR_INVALID_HANDLE,
 * BP_ERR_INVALID_ARGUMENT (out is NULL). */
bp_status bp_graph_dtype(const bp_graph *graph, bp_dtype *out);

/* Adds a leaf of the given shape (rank 0..BP_MAX_RANK; every dimension at least 1). Inputs and
 * parameters have gradients, constants do not. All start filled with zeros.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (out NULL, shape NULL with rank > 0,
 * rank too large, a zero dimension), BP_ERR_OUT_OF_MEMORY (the element count overflows). */
bp_status bp_graph_input(bp_graph *graph, const size_t *shape, size_t rank, bp_node *out);
bp_status bp_graph_parameter(bp_graph *graph, const size_t *shape, size_t rank, bp_node *out);
bp_status bp_graph_constant(bp_graph *graph, const size_t *shape, size_t rank, bp_node *out);

/* ---- Ops --------------------------------------------------------------------------------------
 * Every op below adds one node and writes its id to *out. Unless stated otherwise they fail with
 * BP_ERR_INVALID_HANDLE (graph or an input node), BP_ERR_INVALID_ARGUMENT (out NULL, an unknown
 * enum value, a parameter wrong whatever the inputs: a repeated axis, an empty slice, a list that
 * is not a permutation) or BP_ERR_SHAPE (input shapes the op cannot take, including an axis or a
 * range outside the input; the message names the op and the shapes). docs/OPS.md lists every op with its gradient.
 * Semantics follow PyTorch wherever both define the op. */

/* No node: pass it where a node is optional (layer norm's weight and bias). */
#define BP_NO_NODE ((bp_node)-1)

/* Elementwise binary ops with broadcasting: shapes are aligned from the right, and each pair of
 * dimensions must be equal or one of them 1 (NumPy's rule; scalars and rows broadcast). The
 * gradient of a broadcast operand is summed over the broadcast dimensions.
 *   add: a + b    sub: a - b    mul: a * b    div: a / b
 *   pow: a^b; d/db is taken as 0 where a == 0 and b >= 0 (as PyTorch)
 *   maximum / minimum: the larger / smaller of a and b. The gradient is routed to the input that
 *   was chosen; on a tie (a == b) it is split evenly, half to each (as PyTorch does).
 * A zero upstream gradient adds exactly zero, even where a local derivative is infinite. */
bp_status bp_graph_add(bp_graph *graph, bp_node a, bp_node b, bp_node *out);
bp_status bp_graph_sub(bp_graph *graph, bp_node a, bp_node b, bp_node *out);
bp_status bp_graph_mul(bp_graph *graph, bp_node a, bp_node b, bp_node *out);
bp_status bp_graph_div(bp_graph *graph, bp_node a, bp_node b, bp_node *out);
bp_status bp_graph_pow(bp_graph *graph, bp_node a, bp_node b, bp_node *out);
bp_status bp_graph_maximum(bp_graph *graph, bp_node a, bp_node b, bp_node *out);
bp_status bp_graph_minimum(bp_graph *graph, bp_node a, bp_node b, bp_node *out);

/* What bp_graph_compare tests. */
typedef enum bp_comparison {
    BP_CMP_EQ = 0, /* a == b */
    BP_CMP_NE = 1, /* a != b */
    BP_CMP_LT = 2, /* a <  b */
    BP_CMP_LE = 3, /* a <= b */
    BP_CMP_GT = 4, /* a >  b */
    BP_CMP_GE = 5  /* a >= b */
} bp_comparison;

/* 1 where the comparison holds, else 0, with broadcasting. The result carries no gradient. */
bp_status bp_graph_compare(bp_graph *graph, bp_node a, bp_node b, bp_comparison comparison,
                           bp_node *out);

/* condition != 0 ? a : b elementwise, the three broadcast together. The gradient flows only into
 * the branch taken, so NaN or infinity in the other branch (log of 0, say) never reaches it; the
 * condition gets none. */
bp_status bp_graph_where(bp_graph *graph, bp_node condition, bp_node a, bp_node b, bp_node *out);

/* Elementwise unary ops; the result has the input's shape.
 *   neg: -x    abs: |x| (gradient 0 at 0)    exp: e^x    square: x^2    reciprocal: 1/x
 *   log: ln x; at 0 the value is -inf and the gradient +inf, as in float64 math and PyTorch
 *   sqrt: the square root; at 0 the gradient is +inf, as in float64 math and PyTorch
 *   relu: max(x, 0), gradient 0 at x == 0    silu: x * sigmoid(x)
 *   softplus: ln(1 + e^x), computed without overflow; x itself above 20 (PyTorch's threshold)
 *   sigmoid: 1 / (1 + e^-x), computed without overflow    tanh: tanh x
 *   detach: x itself, with no gradient behind it (PyTorch's detach) */
bp_status bp_graph_neg(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_abs(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_exp(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_log(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_sqrt(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_square(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_reciprocal(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_relu(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_silu(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_softplus(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_sigmoid(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_tanh(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_detach(bp_graph *graph, bp_node x, bp_node *out);

/* Unary ops with a parameter (each must be finite):
 *   pow_scalar: x^exponent; the gradient exponent * x^(exponent-1) is 0 when exponent is 0
 *   leaky_relu: x for x > 0, else slope * x (gradient slope at 0)
 *   elu: x for x > 0, else alpha * (e^x - 1) */
bp_status bp_graph_pow_scalar(bp_graph *graph, bp_node x, double exponent, bp_node *out);
bp_status bp_graph_leaky_relu(bp_graph *graph, bp_node x, double slope, bp_node *out);
bp_status bp_graph_elu(bp_graph *graph, bp_node x, double alpha, bp_node *out);

/* Which GELU bp_graph_gelu computes. */
typedef enum bp_gelu_approximation {
    BP_GELU_EXACT = 0, /* x * Phi(x), with erf */
    BP_GELU_TANH = 1   /* PyTorch's approximate='tanh' form */
} bp_gelu_approximation;

/* GELU: x times the standard normal CDF of x, exactly or in the tanh approximation. */
bp_status bp_graph_gelu(bp_graph *graph, bp_node x, bp_gelu_approximation approximation,
                        bp_node *out);

/* Matrix product of a [..., m, k] and b [..., k, n], giving [..., m, n]: the last two axes are
 * the matrices, and leading axes are a batch that broadcasts as in NumPy's matmul ([2, m, k]
 * times [k, n] gives [2, m, n]). Both operands need rank 2 or more. Products run on CBLAS.
 * Errors also: BP_ERR_SHAPE for a rank below 2, inner dimensions that differ, batch axes that do
 * not broadcast. */
bp_status bp_graph_matmul(bp_graph *graph, bp_node a, bp_node b, bp_node *out);

/* The same with either operand's last two axes transposed first (non-zero flag): x W^T, say,
 * with W stored [out, in] as PyTorch's Linear keeps it. No transposed copy is made. */
bp_status bp_graph_matmul_transposed(bp_graph *graph, bp_node a, bp_node b, int transpose_a,
                                     int transpose_b, bp_node *out);

/* Sum and mean of all elements of x, giving a scalar (rank 0). */
bp_status bp_graph_sum(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_mean(bp_graph *graph, bp_node x, bp_node *out);

/* What bp_graph_reduce computes over the reduced axes. */
typedef enum bp_reduce_op {
    BP_REDUCE_SUM = 0,      /* every element gets the upstream gradient */
    BP_REDUCE_MEAN = 1,     /* every element gets the upstream gradient / element count */
    BP_REDUCE_MAX = 2,      /* gradient split evenly among tied maxima (PyTorch's amax) */
    BP_REDUCE_MIN = 3,      /* likewise for minima */
    BP_REDUCE_LOGSUMEXP = 4 /* log(sum(e^x)), with the maximum subtracted first */
} bp_reduce_op;

/* Reduces x over the `axis_count` axes in `axes` (negative ones count from the end; each at most
 * once), or over every axis when axis_count is 0 (axes may then be NULL). With keep_dims non-zero
 * the reduced axes stay as size 1, otherwise they are removed (NumPy's keepdims). */
bp_status bp_graph_reduce(bp_graph *graph, bp_node x, bp_reduce_op op, const int32_t *axes,
                          size_t axis_count, int keep_dims, bp_node *out);

/* Layout ops: they move elements and send each gradient back to where it came from.
 *   reshape: the same elements under `shape` (same element count)
 *   permute: output axis i is input axis permutation[i]; `rank` entries, a permutation of 0..rank-1
 *   transpose: swaps the last two axes (rank 2 or more)
 *   concat: `input_count` (1 or more) nodes joined along `axis`; other axes must agree
 *   slice: elements start..end-1 along `axis` (0 <= start < end <= the axis's size)
 *   gather: rows of `table` [rows, ...] picked by `indices` (any shape, whole numbers in
 *           [0, rows)), giving [indices..., ...]: an embedding lookup. Repeated indices add their
 *           gradients into the same row; indices get none. An index out of range makes
 *           bp_graph_forward fail with BP_ERR_INVALID_ARGUMENT.
 * Axes may be negative, counting from the end. */
bp_status bp_graph_reshape(bp_graph *graph, bp_node x, const size_t *shape, size_t rank,
                           bp_node *out);
bp_status bp_graph_permute(bp_graph *graph, bp_node x, const size_t *permutation, size_t rank,
                           bp_node *out);
bp_status bp_graph_transpose(bp_graph *graph, bp_node x, bp_node *out);
bp_status bp_graph_concat(bp_graph *graph, const bp_node *inputs, size_t input_count,
                          int32_t axis, bp_node *out);
bp_status bp_graph_slice(bp_graph *graph, bp_node x, int32_t axis, size_t start, size_t end,
                         bp_node *out);
bp_status bp_graph_gather(bp_graph *graph, bp_node table, bp_node indices, bp_node *out);

/* Softmax and log-softmax along `axis` (negative counts from the end), stable for any finite
 * input: the maximum is subtracted before exponentiating. */
bp_status bp_graph_softmax(bp_graph *graph, bp_node x, int32_t axis, bp_node *out);
bp_status bp_graph_log_softmax(bp_graph *graph, bp_node x, int32_t axis, bp_node *out);

/* Layer normalization over the last `normalized_rank` axes of x, as PyTorch's LayerNorm:
 * (x - mean) / sqrt(var + eps) with the biased variance, then * weight + bias when both are
 * given (shaped like those last axes), or neither (pass BP_NO_NODE twice). eps must be > 0. */
bp_status bp_graph_layer_norm(bp_graph *graph, bp_node x, size_t normalized_rank, bp_node weight,
                              bp_node bias, double eps, bp_node *out);

/* Dropout: in training mode (see bp_graph_set_training) each element is zeroed with probability
 * p and the rest scaled by 1/(1-p), drawing from the graph's seeded generator; in evaluation
 * mode it passes x through. The mask of the latest forward is used by backward. p in [0, 1]. */
bp_status bp_graph_dropout(bp_graph *graph, bp_node x, double p, bp_node *out);

/* ---- Losses ---------------------------------------------------------------------------------
 * Each reduces as `reduction` says: BP_REDUCTION_MEAN divides by the number of elements for the
 * elementwise losses and by the batch for cross-entropy and NLL (as PyTorch). Both operands of an
 * elementwise loss get gradients when they need them (a target is usually a constant). */

/* (prediction - target)^2; shapes must be equal. */
bp_status bp_graph_mse_loss(bp_graph *graph, bp_node prediction, bp_node target,
                            bp_reduction reduction, bp_node *out);

/* |prediction - target|, gradient 0 where they are equal. */
bp_status bp_graph_l1_loss(bp_graph *graph, bp_node prediction, bp_node target,
                           bp_reduction reduction, bp_node *out);

/* 0.5 d^2 where |d| < delta, else delta * (|d| - 0.5 delta), for d = prediction - target
 * (PyTorch's HuberLoss). delta must be > 0. */
bp_status bp_graph_huber_loss(bp_graph *graph, bp_node prediction, bp_node target, double delta,
                              bp_reduction reduction, bp_node *out);

/* Binary cross-entropy of probabilities p in [0, 1] against targets t:
 * -(t ln p + (1 - t) ln(1 - p)), each log clamped at -100 as PyTorch's BCELoss, so p of exactly
 * 0 or 1 gives finite values and gradients. */
bp_status bp_graph_bce_loss(bp_graph *graph, bp_node probabilities, bp_node target,
                            bp_reduction reduction, bp_node *out);

/* Binary cross-entropy from logits x, fused and stable for any x:
 * max(x, 0) - x t + ln(1 + e^-|x|), gradient sigmoid(x) - t. */
bp_status bp_graph_bce_with_logits_loss(bp_graph *graph, bp_node logits, bp_node target,
                                        bp_reduction reduction, bp_node *out);

/* Softmax cross-entropy from logits [batch, classes] against either class indices [batch]
 * (whole numbers in [0, classes), stored in the graph's element type) or class probabilities
 * [batch, classes], as PyTorch's cross_entropy. Fused and stable: log-softmax is computed with
 * the log-sum-exp shift, and the gradient is softmax - onehot (softmax * sum(t) - t for
 * probabilities). BP_REDUCTION_NONE gives one loss per sample. Class indices get no gradient;
 * probability targets get -log softmax. A label that is not a valid class index makes
 * bp_graph_forward fail with BP_ERR_INVALID_ARGUMENT.
 * Errors also: BP_ERR_SHAPE (logits not rank 2, targets neither [batch] nor [batch, classes]). */
bp_status bp_graph_cross_entropy(bp_graph *graph, bp_node logits, bp_node labels,
                                 bp_reduction reduction, bp_node *out);

/* Negative log-likelihood from log-probabilities [batch, classes] (use log_softmax) and class
 * indices [batch]: -logp[label]. Indices get no gradient; invalid ones fail the forward. */
bp_status bp_graph_nll_loss(bp_graph *graph, bp_node log_probabilities, bp_node labels,
                            bp_reduction reduction, bp_node *out);

/* ---- Custom ops ------------------------------------------------------------------------------
 * A caller's own gate, usable in any graph (and a network's). The contract is the one every
 * built-in op follows:
 *   shape:    from the input shapes (data is NULL), write the output's rank to *out_rank and its
 *             dimensions to out_shape (room for BP_MAX_RANK). Return 0 to accept, non-zero to
 *             reject the inputs (the op is then not added: BP_ERR_SHAPE).
 *   forward:  compute output->data from inputs[i].data. Return 0, or non-zero to fail the
 *             bp_graph_forward that ran it (BP_ERR_INVALID_ARGUMENT).
 *   backward: read output_grad->data (the upstream gradient) and ADD (+=) each input's share
 *             into input_grads[i].data; never overwrite, since a node used by several consumers
 *             receives the sum. input_grads[i].data is NULL for an input that needs no gradient.
 *             Return 0, or non-zero to fail the bp_graph_backward that ran it.
 * Data is float* or double* according to the graph's dtype, row-major, `count` elements; it
 * belongs to the graph and is valid only during the callback. The callbacks and userdata must
 * stay valid as long as the graph; the library copies the struct and the name. Callbacks run on
 * the thread that called bp_graph_forward / bp_graph_backward and must not call into the same
 * graph. */
typedef struct bp_tensor {
    void *data;          /* float* or double*; NULL in shape callbacks and unneeded gradients */
    const size_t *shape; /* `rank` dimensions (NULL when rank is 0) */
    size_t rank;
    size_t count;        /* element count: the product of the dimensions */
} bp_tensor;

/* A custom op for bp_graph_custom: its name, its three callbacks (the contract above) and the
 * userdata they receive. */
typedef struct bp_custom_op {
    size_t size; /* sizeof(bp_custom_op): lets later versions append fields */
    const char *name;
    int (*shape)(void *userdata, const bp_tensor *inputs, size_t input_count, size_t *out_shape,
                 size_t *out_rank);
    int (*forward)(void *userdata, const bp_tensor *inputs, size_t input_count,
                   const bp_tensor *output);
    int (*backward)(void *userdata, const bp_tensor *inputs, size_t input_count,
                    const bp_tensor *output, const bp_tensor *output_grad,
                    const bp_tensor *input_grads);
    void *userdata;
} bp_custom_op;

/* Adds a node computed by `op` from `input_count` (0 to 64) inputs.
 * Errors also: BP_ERR_INVALID_ARGUMENT (op NULL, op->size smaller than this header's
 * sizeof(bp_custom_op), a callback NULL), BP_ERR_SHAPE (the shape callback rejected). */
bp_status bp_graph_custom(bp_graph *graph, const bp_custom_op *op, const bp_node *inputs,
                          size_t input_count, bp_node *out);

/* Sets the values of a leaf (input, parameter or constant). `count` must equal the node's
 * element count. The _f64 form takes doubles; each form converts if the graph's dtype differs.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (values NULL, wrong count, node is
 * an op). */
bp_status bp_graph_set_value(bp_graph *graph, bp_node node, const float *values, size_t count);
bp_status bp_graph_set_value_f64(bp_graph *graph, bp_node node, const double *values, size_t count);

/* Computes every op node from the leaves, in creation (topological) order.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (an op rejects its input values,
 * e.g. an invalid class label), BP_ERR_BUSY. On failure, op values are left undefined and
 * must not be read (bp_graph_value reports BP_ERR_STATE until the next successful forward). */
bp_status bp_graph_forward(bp_graph *graph);

/* Backpropagates from `root`, which must be a scalar (one element), seeding its gradient with 1:
 * walks the nodes root depends on in reverse topological order, applying each op's local
 * backward and adding (+=) into the gradients of its inputs.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_SHAPE (root has more than one element),
 * BP_ERR_STATE (no successful forward since the graph or a leaf value changed, or no gradient
 * can reach root: it depends on inputs and parameters only through ops that pass none, such as
 * comparisons and detach, or on constants alone). */
bp_status bp_graph_backward(bp_graph *graph, bp_node root);

/* Sets every gradient in the graph to zero. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_BUSY. */
bp_status bp_graph_zero_grad(bp_graph *graph);

/* Copies a node's values (or its gradient) into `out`, which holds `count` elements; `count`
 * must equal the node's element count. The _f64 forms write doubles; each form converts if the
 * graph's dtype differs. Leaf values can always be read; op values need a successful forward
 * since the last change. Constants have no gradient, nor has a network's input (bp_net_nodes).
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (out NULL, wrong count, gradient of a
 * constant), BP_ERR_STATE (op values not computed). */
bp_status bp_graph_value(const bp_graph *graph, bp_node node, float *out, size_t count);
bp_status bp_graph_value_f64(const bp_graph *graph, bp_node node, double *out, size_t count);
bp_status bp_graph_grad(const bp_graph *graph, bp_node node, float *out, size_t count);
bp_status bp_graph_grad_f64(const bp_graph *graph, bp_node node, double *out, size_t count);

/* The shape of a node: its rank through *rank and its dimensions into `shape`, which holds
 * `capacity` entries (BP_MAX_RANK always suffices). With `shape` NULL and capacity 0 it reports
 * the rank only. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (rank NULL, a capacity
 * other than 0 that is smaller than the rank, shape NULL with capacity > 0). */
bp_status bp_graph_shape(const bp_graph *graph, bp_node node, size_t *shape, size_t capacity,
                         size_t *rank);

/* The number of elements of a node through *out. Errors: BP_ERR_INVALID_HANDLE,
 * BP_ERR_INVALID_ARGUMENT (out NULL). */
bp_status bp_graph_size(const bp_graph *graph, bp_node node, size_t *out);

/* The number of nodes in the graph through *out. Errors: BP_ERR_INVALID_HANDLE,
 * BP_ERR_INVALID_ARGUMENT (out NULL). */
bp_status bp_graph_node_count(const bp_graph *graph, size_t *out);

/* Checks the gradients of scalar `root` against central finite differences: for every element x
 * of every input and parameter root depends on, numeric = (f(x+eps) - f(x-eps)) / (2 eps), and
 * the check passes when every |analytic - numeric| <= atol + rtol * |numeric| (PyTorch's
 * gradcheck rule; it uses eps 1e-6, atol 1e-5, rtol 1e-3 on float64 graphs). Writes 1 or 0 to
 * *passed and the largest |analytic - numeric| to *max_abs_error (either may be NULL).
 * Afterwards leaf values are unchanged, and leaf gradients hold the gradient of root alone
 * (they are zeroed first). Runs forward twice per element: meant for small graphs, and for
 * float64 (float32 needs a far larger eps). Errors: those of bp_graph_forward and
 * bp_graph_backward, and BP_ERR_INVALID_ARGUMENT (eps not positive, a tolerance negative). */
bp_status bp_graph_check_gradients(bp_graph *graph, bp_node root, double eps, double atol,
                                   double rtol, int *passed, double *max_abs_error);

/* Training mode (non-zero, the default) or evaluation mode (0). Only dropout behaves
 * differently: in evaluation mode it passes values through. Switching marks op values stale.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_BUSY. */
bp_status bp_graph_set_training(bp_graph *graph, int training);

/* Restarts the graph's random generator (used by dropout) from `seed`; a new graph starts from
 * seed 0. The same seed and the same calls give the same results.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_BUSY. */
bp_status bp_graph_seed(bp_graph *graph, uint64_t seed);

/* ---------------------------------------------------------------------------------------------
 * Network: dense layers trained by backpropagation
 *
 * A network maps [batch, input_width] to [batch, output_width]. Build it with bp_net_create,
 * bp_net_add_dense (any number of times) and bp_net_set_loss; then train with the three steps
 *     bp_net_zero_grad -> bp_net_forward -> bp_net_backward -> bp_net_update
 * or with bp_net_train_step, which does all of them. Values are float32.
 *
 * Weights are stored as PyTorch's nn.Linear does: [out, in], with a bias [out], and initialized
 * like it: uniform in [-1/sqrt(in), 1/sqrt(in)], from the network's seeded generator (same seed,
 * same weights).
 * ------------------------------------------------------------------------------------------- */

/* A network (opaque): made by bp_net_create and freed by bp_net_free. */
typedef struct bp_net bp_net;

/* What a dense layer applies to x W^T + b. */
typedef enum bp_activation {
    BP_ACTIVATION_NONE = 0,    /* the identity: linear outputs, or logits for cross-entropy */
    BP_ACTIVATION_RELU = 1,    /* max(x, 0) */
    BP_ACTIVATION_SIGMOID = 2, /* 1 / (1 + e^-x) */
    BP_ACTIVATION_TANH = 3     /* tanh x */
} bp_activation;

/* What a network is trained to minimize (bp_net_set_loss). */
typedef enum bp_loss {
    /* Mean squared error against float targets [batch, output_width], averaged over all
     * elements (PyTorch's MSELoss). Use bp_net_backward / bp_net_train_step. */
    BP_LOSS_MSE = 0,
    /* Softmax cross-entropy of the last layer's outputs (logits) against integer class labels
     * [batch], averaged over the batch (PyTorch's CrossEntropyLoss). Use bp_net_backward_labels
     * / bp_net_train_step_labels. Leave the last layer's activation at BP_ACTIVATION_NONE. */
    BP_LOSS_CROSS_ENTROPY = 1
} bp_loss;

/* Creates a network that takes `input_width` features per sample, with no layers yet and loss
 * BP_LOSS_MSE. `seed` drives every random choice the network makes.
 * Errors: BP_ERR_INVALID_ARGUMENT (out NULL, input_width 0), BP_ERR_OUT_OF_MEMORY. */
bp_status bp_net_create(size_t input_width, uint64_t seed, bp_net **out);

/* Frees a network and its graph. NULL is a no-op (BP_OK).
 * Errors: BP_ERR_INVALID_HANDLE (freed or foreign), BP_ERR_BUSY. */
bp_status bp_net_free(bp_net *net);

/* Appends a dense layer of `units` outputs: y = activation(x W^T + b).
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (units 0, unknown activation),
 * BP_ERR_OUT_OF_MEMORY (the weight count overflows or cannot be allocated). */
bp_status bp_net_add_dense(bp_net *net, size_t units, bp_activation activation);

/* Chooses the loss. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (unknown loss). */
bp_status bp_net_set_loss(bp_net *net, bp_loss loss);

/* Widths: features in, outputs per sample (the last layer's units; the input width while there
 * are no layers), and the number of layers (dense, dropout and layer norm each count one).
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (out NULL). */
bp_status bp_net_input_width(const bp_net *net, size_t *out);
bp_status bp_net_output_width(const bp_net *net, size_t *out);
bp_status bp_net_layer_count(const bp_net *net, size_t *out);

/* The total number of trainable parameters (weights and biases) through *out.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (out NULL). */
bp_status bp_net_parameter_count(const bp_net *net, size_t *out);

/* Forward pass on a minibatch of `batch` samples: `inputs` holds input_count floats, which must
 * be batch * input_width (row-major), and the outputs, batch * output_width floats, are written
 * to `outputs`, which holds output_count. Keeps what backward needs.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (NULL buffers, batch 0, a count that
 * does not match), BP_ERR_STATE (no layers), BP_ERR_NONFINITE (an input is NaN or infinite),
 * BP_ERR_OUT_OF_MEMORY (batch too large), BP_ERR_BUSY. */
bp_status bp_net_forward(bp_net *net, size_t batch, const float *inputs, size_t input_count,
                         float *outputs, size_t output_count);

/* Backward pass for the latest bp_net_forward, against float targets (BP_LOSS_MSE):
 * `targets` holds batch * output_width floats. Writes the loss to *loss (may be NULL) and adds
 * the gradient of the batch-averaged loss into the parameter gradients.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (targets NULL, wrong count, the loss is
 * cross-entropy), BP_ERR_STATE (no forward since the last update, predict or change),
 * BP_ERR_NONFINITE (a target is NaN or infinite, or the loss itself is not finite),
 * BP_ERR_BUSY. On failure no gradient changes. */
bp_status bp_net_backward(bp_net *net, const float *targets, size_t target_count, float *loss);

/* Backward pass for the latest bp_net_forward against class labels (BP_LOSS_CROSS_ENTROPY):
 * `labels` holds `count` == batch labels in [0, output_width). Otherwise as bp_net_backward.
 * Errors: as bp_net_backward, and BP_ERR_INVALID_ARGUMENT for a label out of range or a loss
 * that is not cross-entropy. */
bp_status bp_net_backward_labels(bp_net *net, const int32_t *labels, size_t count, float *loss);

/* Gradient descent: every parameter w becomes w - learning_rate * grad(w). Gradients are kept
 * (call bp_net_zero_grad before the next backward).
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (learning_rate negative or not
 * finite), BP_ERR_NONFINITE (a gradient is NaN or infinite: no weight changes), BP_ERR_BUSY. */
bp_status bp_net_update(bp_net *net, float learning_rate);

/* Sets every parameter gradient to zero. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_BUSY. */
bp_status bp_net_zero_grad(bp_net *net);

/* One whole training step: zero_grad, forward, backward and update, with the arguments of those
 * calls; the loss before the update is written to *loss (may be NULL). The _labels form is for
 * BP_LOSS_CROSS_ENTROPY. Every argument is checked first: bad input changes nothing. If the loss
 * or a gradient turns out not finite (BP_ERR_NONFINITE), the weights are unchanged and the
 * gradients hold this step's. Errors: those of the steps. */
bp_status bp_net_train_step(bp_net *net, size_t batch, const float *inputs, size_t input_count,
                            const float *targets, size_t target_count, float learning_rate,
                            float *loss);
bp_status bp_net_train_step_labels(bp_net *net, size_t batch, const float *inputs,
                                   size_t input_count, const int32_t *labels, size_t label_count,
                                   float learning_rate, float *loss);

/* Inference: like bp_net_forward (same arguments), but a following bp_net_backward fails with
 * BP_ERR_STATE until the next bp_net_forward. Gradients are not touched. */
bp_status bp_net_predict(bp_net *net, size_t batch, const float *inputs, size_t input_count,
                         float *outputs, size_t output_count);

/* The graph the network is built on, through *out: borrowed, owned by the network, valid until
 * bp_net_free. Use it to read parameters and gradients (see bp_net_layer_nodes), or to add nodes
 * of your own on top of the network's (a regularizer, say; bp_net_* calls compute only the
 * network's nodes). It shares the network's lock: using both from two threads at once gives
 * BP_ERR_BUSY. Do not free it: bp_graph_free refuses with BP_ERR_INVALID_HANDLE.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (out NULL). */
bp_status bp_net_graph(bp_net *net, bp_graph **out);

/* The parameter nodes of layer `layer` (0-based) in the network's graph: for a dense layer the
 * weight [units, in] and the bias [units]; for layer normalization its weight and bias [width];
 * BP_NO_NODE for a layer without parameters (dropout). Either out-pointer may be NULL.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (layer out of range). */
bp_status bp_net_layer_nodes(const bp_net *net, size_t layer, bp_node *weight, bp_node *bias);

/* The network's own nodes in its graph: the input [batch, input_width], the outputs
 * [batch, output_width] (the last layer's), and the loss, a scalar, or BP_NO_NODE until the first
 * backward builds it. With them the graph's calls reach the whole network: for example
 * bp_graph_check_gradients(graph, loss, ...) after a forward and backward checks every layer.
 * The input has no gradient (as a tensor in PyTorch by default): backward skips the first
 * layer's product with respect to it, and bp_graph_grad on it is BP_ERR_INVALID_ARGUMENT.
 * Any out-pointer may be NULL. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_BUSY. */
bp_status bp_net_nodes(const bp_net *net, bp_node *input, bp_node *output, bp_node *loss);

/* Like bp_net_create, with the element type the network computes in. Data still crosses the
 * boundary as float32 and is converted; a float64 network is for gradient checks through
 * bp_net_graph, bp_net_nodes and bp_graph_check_gradients. Errors: as bp_net_create, and
 * BP_ERR_INVALID_ARGUMENT (unknown dtype). */
bp_status bp_net_create_dtype(bp_dtype dtype, size_t input_width, uint64_t seed, bp_net **out);

/* How bp_net_add_dense_init fills a new dense layer's weight and bias. */
typedef enum bp_initializer {
    BP_INIT_LINEAR_DEFAULT = 0, /* PyTorch's nn.Linear: weight and bias U(-1/sqrt(in), 1/sqrt(in)) */
    BP_INIT_XAVIER_UNIFORM = 1, /* U(-b, b), b = sqrt(6 / (in + out)); bias 0 */
    BP_INIT_XAVIER_NORMAL = 2,  /* N(0, 2 / (in + out)); bias 0 */
    BP_INIT_KAIMING_UNIFORM = 3, /* He for ReLU: U(-b, b), b = sqrt(6 / in); bias 0 */
    BP_INIT_KAIMING_NORMAL = 4,  /* He for ReLU: N(0, 2 / in); bias 0 */
    BP_INIT_ZEROS = 5,          /* weight and bias 0 */
    BP_INIT_CONSTANT = 6        /* weight and bias `value` */
} bp_initializer;

/* bp_net_add_dense with a chosen initializer; `value` is used by BP_INIT_CONSTANT only (finite).
 * Draws come from the network's seeded generator, in layer order.
 * Errors: as bp_net_add_dense, and BP_ERR_INVALID_ARGUMENT (unknown initializer). */
bp_status bp_net_add_dense_init(bp_net *net, size_t units, bp_activation activation,
                                bp_initializer initializer, double value);

/* Appends dropout with probability p in [0, 1]: active in bp_net_forward and bp_net_train_step
 * (training), the identity in bp_net_predict. Errors: BP_ERR_INVALID_HANDLE,
 * BP_ERR_INVALID_ARGUMENT (p out of range). */
bp_status bp_net_add_dropout(bp_net *net, double p);

/* Appends layer normalization over the features (PyTorch's LayerNorm(width, eps)), with a
 * weight starting at 1 and a bias at 0. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT
 * (eps not positive and finite). */
bp_status bp_net_add_layer_norm(bp_net *net, double eps);

/* Copies layer `layer`'s weight and bias into caller buffers (counts must equal their sizes), or
 * replaces them (values must be finite). Nothing is written unless every check passes.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (layer out of range or without
 * parameters, NULL buffers, wrong counts), BP_ERR_NONFINITE (set: a value is NaN or infinite). */
bp_status bp_net_layer_parameters(const bp_net *net, size_t layer, float *weight,
                                  size_t weight_count, float *bias, size_t bias_count);
bp_status bp_net_set_layer_parameters(bp_net *net, size_t layer, const float *weight,
                                      size_t weight_count, const float *bias, size_t bias_count);

/* Every parameter (or gradient) end to end as one flat buffer of bp_net_parameter_count floats,
 * layer by layer, weight before bias: the layout optimizers use, and a buffer to hand to an
 * allreduce for data-parallel training. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT
 * (NULL, wrong count), BP_ERR_NONFINITE (set: a value is NaN or infinite; nothing changes). */
bp_status bp_net_parameters(const bp_net *net, float *out, size_t count);
bp_status bp_net_set_parameters(bp_net *net, const float *values, size_t count);
bp_status bp_net_gradients(const bp_net *net, float *out, size_t count);

/* ---------------------------------------------------------------------------------------------
 * Checkpoints and data files
 *
 * A checkpoint is a file in the safetensors format (an 8-byte little-endian header length, a
 * JSON header, then the raw little-endian tensor data) holding a network and, optionally, an
 * optimizer. Any safetensors reader can open it (Python's safetensors.numpy.load_file, say):
 *   - Parameters are named as those of the equivalent torch nn.Sequential, where an activation
 *     is a module of its own: "<module>.weight" and "<module>.bias" for each dense layer (weight
 *     [out, in], as nn.Linear) and each layer norm (weight and bias [width]). A 4 -> 8 relu -> 3
 *     network has "0.weight" [8, 4], "0.bias" [8], "2.weight" [3, 8] and "2.bias" [3], the
 *     state_dict of nn.Sequential(Linear(4, 8), ReLU(), Linear(8, 3)). The dtype is the
 *     network's: "F32" or "F64".
 *   - With an optimizer, "optimizer.<name>" for each of its state buffers, under torch.optim's
 *     names (momentum_buffer, exp_avg, exp_avg_sq, max_exp_avg_sq, square_avg, grad_avg, sum),
 *     each [parameter count] over the flat parameter block (the layout of bp_net_parameters).
 *   - "__metadata__" strings: "format" = "libbackprop", "format_version" = "1", "architecture"
 *     (JSON: input_width, seed, dtype, loss and layers, each {"kind": "dense", "units",
 *     "activation"}, {"kind": "dropout", "p"} or {"kind": "layer_norm", "eps"}), "rng_state"
 *     (JSON: the four 64-bit words of the generator dropout draws from) and, with an optimizer,
 *     "optimizer" (JSON: algorithm, step count, every option under torch.optim's name, and the
 *     names of the state buffers saved).
 *
 * Saved: the layers, the loss, the parameters, the dropout generator and the optimizer. A loaded
 * network predicts exactly as the saved one did and draws the dropout masks it would have drawn
 * next; trained on with the loaded optimizer, a network without dropout gets exactly the weights
 * the saved pair would have, bit for bit. (With dropout, the first backward of a newly built or
 * loaded network currently draws its mask anew, so that step differs.) Not saved: gradients, nodes
 * added through bp_net_graph, and a learning-rate schedule (set it again after loading; its base
 * rate is then the saved learning rate). Layers added to a loaded network draw their initial
 * values as in a new network with the saved seed.
 *
 * Loading checks everything before it builds anything, so a truncated, corrupted or hostile
 * file is refused with BP_ERR_FORMAT and a message saying what is wrong; it is never read out
 * of bounds, and nothing larger than the file justifies is allocated: the header length must
 * fit in the file and be at most 100 MB; the JSON is parsed strictly (valid UTF-8, no duplicate
 * keys) with bounded nesting, string lengths and value counts; each tensor's element count times
 * its dtype's size must equal its byte range; the ranges must cover the data exactly, without
 * overlap or gap; and the architecture must match the tensors (names, shapes and dtype), with
 * none missing and none extra. Parameters or optimizer state that are NaN or infinite give
 * BP_ERR_NONFINITE. Other metadata keys are ignored.
 * ------------------------------------------------------------------------------------------- */

/* The optimizer handle, which checkpoints carry; the next section describes it. */
typedef struct bp_optimizer bp_optimizer;

/* Saves `net` and, unless `optimizer` is NULL, that optimizer (its algorithm, options, step
 * count and state) to the file `path`, atomically: the bytes go to a temporary file in the same
 * directory, which is flushed to disk and then renamed over `path`. If anything fails, the
 * temporary file is removed and a previous file at `path` is left intact. A symbolic link at
 * `path` is followed: the file it names is replaced. Neither handle changes.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (path NULL or not UTF-8, an optimizer
 * whose state is sized for another network, more than 10000 layers), BP_ERR_NONFINITE (a
 * parameter or state value is NaN or infinite: nothing is written), BP_ERR_IO (the file cannot
 * be written: a missing or read-only directory, a full disk, or `path` is a directory or a
 * device), BP_ERR_BUSY. */
bp_status bp_net_save(const bp_net *net, const bp_optimizer *optimizer, const char *path);

/* Loads a checkpoint file into a new network, written to *out (free it with bp_net_free).
 * Unless `optimizer_out` is NULL, it receives a new optimizer (free it with bp_optimizer_free)
 * when the file holds one, and NULL when it does not; with `optimizer_out` NULL the file's
 * optimizer is checked but not created. Nothing is written on failure.
 * Errors: BP_ERR_INVALID_ARGUMENT (path or out NULL, path not UTF-8), BP_ERR_IO (the file cannot
 * be opened or read, or is not a regular file), BP_ERR_FORMAT (not a valid libbackprop
 * checkpoint, as above), BP_ERR_NONFINITE (a saved value is NaN or infinite),
 * BP_ERR_OUT_OF_MEMORY. */
bp_status bp_net_load(const char *path, bp_net **out, bp_optimizer **optimizer_out);

/* The checkpoint bp_net_save would write, into memory. With buffer NULL and capacity 0, writes
 * the number of bytes needed to *size and returns BP_OK. Otherwise writes the checkpoint into
 * `buffer`, which holds `capacity` bytes, and its length to *size. When capacity is too small,
 * nothing is written into buffer but the needed size is still written to *size (the one
 * exception to "results only on success"), and the call fails with BP_ERR_INVALID_ARGUMENT.
 * Errors: as bp_net_save without BP_ERR_IO, and BP_ERR_INVALID_ARGUMENT (size NULL, buffer NULL
 * with capacity > 0, capacity too small). */
bp_status bp_net_save_buffer(const bp_net *net, const bp_optimizer *optimizer, void *buffer,
                             size_t capacity, size_t *size);

/* Loads a checkpoint from the `size` bytes at `data`, which the library only reads during the
 * call. Otherwise as bp_net_load. Errors: as bp_net_load without BP_ERR_IO, and
 * BP_ERR_INVALID_ARGUMENT (data NULL). */
bp_status bp_net_load_buffer(const void *data, size_t size, bp_net **out,
                             bp_optimizer **optimizer_out);

/* ---- Data files -------------------------------------------------------------------------------
 * A dataset is a table of training data read from a file: one row per sample, with float32
 * features and, optionally, a label (or regression target) column. It is read-only once loaded,
 * so any number of threads may read the same dataset at once.
 *
 * CSV files hold numbers only: [+-]digits[.digits][(e|E)[+-]digits] (".5" and "5." too),
 * optionally with spaces or one pair of double quotes around them. Fields are separated by the
 * delimiter; lines end in "\n" or "\r\n"; blank lines and a UTF-8 byte order mark are skipped.
 * Every line must have the same number of columns, and no field may be empty, NaN or infinite.
 * A file that breaks a rule is BP_ERR_FORMAT, and bp_last_error() names the line (1-based,
 * counting every line of the file) and the column (1-based):
 *     "line 7, column 3: \"abc\" is not a number" */

/* A dataset (opaque): made by bp_dataset_load_csv and freed by bp_dataset_free. */
typedef struct bp_dataset bp_dataset;

/* Always start from bp_csv_options_default, which sets `size`: later versions may append
 * fields. */
typedef struct bp_csv_options {
    size_t size;
    char delimiter;       /* the byte between fields (default ','); not a digit, '.', '+', '-',
                             'e', 'E', '"', CR, LF or NUL */
    int has_header;       /* non-zero (default): the first non-blank line names the columns; it is
                             skipped, but its column count must match the data's */
    int has_label;        /* non-zero (default): one column is the label; 0: all are features */
    int64_t label_column; /* the label's column, 0-based; negative counts from the end (default
                             -1: the last column) */
    size_t max_bytes;     /* larger files are refused with BP_ERR_FORMAT (default 1 GiB) */
} bp_csv_options;

/* Fills *out with the defaults above. Errors: BP_ERR_INVALID_ARGUMENT (out NULL). */
bp_status bp_csv_options_default(bp_csv_options *out);

/* Reads a CSV file into a new dataset, written to *out (free it with bp_dataset_free).
 * `options` may be NULL for the defaults.
 * Errors: BP_ERR_INVALID_ARGUMENT (path or out NULL, path not UTF-8, options->size too small, a
 * delimiter that cannot separate numbers, a label column outside the file's columns), BP_ERR_IO
 * (the file cannot be opened or read, or is not a regular file), BP_ERR_FORMAT (larger than
 * max_bytes, a malformed field, a line whose column count differs, no data rows, no feature
 * column besides the label), BP_ERR_OUT_OF_MEMORY. */
bp_status bp_dataset_load_csv(const char *path, const bp_csv_options *options,
                              bp_dataset **out);

/* Frees a dataset. NULL is a no-op. Errors: BP_ERR_INVALID_HANDLE. */
bp_status bp_dataset_free(bp_dataset *dataset);

/* The number of rows, and of features per row (the columns less the label column). Either
 * out-pointer may be NULL. Errors: BP_ERR_INVALID_HANDLE. */
bp_status bp_dataset_size(const bp_dataset *dataset, size_t *rows, size_t *features);

/* Copies the features, row-major (rows x features floats, the input layout of bp_net_forward),
 * into `out`, which holds `count` == rows x features.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (out NULL, wrong count). */
bp_status bp_dataset_features(const bp_dataset *dataset, float *out, size_t count);

/* Copies the label column as class indices, one per row (`count` == rows), for
 * bp_net_train_step_labels. Each label must be a whole number in int32's range.
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (out NULL, wrong count, the dataset has
 * no label column), BP_ERR_FORMAT (a label that is not a whole number or is out of range; the
 * message names its line; nothing is written). */
bp_status bp_dataset_labels(const bp_dataset *dataset, int32_t *out, size_t count);

/* Copies the label column as float targets, one per row (`count` == rows), for regression.
 * Errors: as bp_dataset_labels, with BP_ERR_FORMAT for a value too large for a float. */
bp_status bp_dataset_targets(const bp_dataset *dataset, float *out, size_t count);

/* ---------------------------------------------------------------------------------------------
 * Optimizers, learning-rate schedules and gradient clipping
 *
 * An optimizer updates the parameters of a network (or of a graph) from their gradients, with
 * torch.optim's formulas and defaults. It keeps state (momentum buffers, moment estimates)
 * sized on its first step; use one optimizer per network. A step whose gradients hold NaN or
 * infinity fails with BP_ERR_NONFINITE and changes neither the weights nor the state.
 * ------------------------------------------------------------------------------------------- */

/* The update rule of an optimizer; each reads the fields of bp_optimizer_options it names. */
typedef enum bp_optimizer_kind {
    BP_OPTIMIZER_SGD = 0,     /* momentum, dampening, nesterov, weight_decay */
    BP_OPTIMIZER_ADAM = 1,    /* beta1, beta2, eps, amsgrad, weight_decay (added to the gradient) */
    BP_OPTIMIZER_ADAMW = 2,   /* as Adam, with decoupled weight decay (default 0.01) */
    BP_OPTIMIZER_RMSPROP = 3, /* alpha, eps, momentum, centered, weight_decay */
    BP_OPTIMIZER_ADAGRAD = 4  /* lr_decay, initial_accumulator_value, eps, weight_decay */
} bp_optimizer_kind;

/* Hyperparameters, named as in torch.optim; each optimizer reads the ones it defines. Always
 * start from bp_optimizer_options_default, which sets `size` and PyTorch's defaults, then change
 * what you need: later versions may append fields. */
typedef struct bp_optimizer_options {
    size_t size;
    double learning_rate;
    double weight_decay;
    double momentum;
    double dampening;
    int nesterov;
    double beta1;
    double beta2;
    int amsgrad;
    double eps;
    double alpha;
    int centered;
    double lr_decay;
    double initial_accumulator_value;
} bp_optimizer_options;

/* Fills *out with `kind`'s defaults (learning rate 0.01 for SGD, which has none in PyTorch).
 * Errors: BP_ERR_INVALID_ARGUMENT (unknown kind, out NULL). */
bp_status bp_optimizer_options_default(bp_optimizer_kind kind, bp_optimizer_options *out);

/* Creates an optimizer; `options` may be NULL for the defaults. Options are checked as
 * torch.optim checks them (finite, rates and decays not negative, betas in [0, 1), nesterov
 * needing momentum and no dampening). Errors: BP_ERR_INVALID_ARGUMENT (unknown kind, out NULL,
 * options->size too small, a bad option). */
bp_status bp_optimizer_create(bp_optimizer_kind kind, const bp_optimizer_options *options,
                              bp_optimizer **out);

/* Frees an optimizer. NULL is a no-op. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_BUSY. */
bp_status bp_optimizer_free(bp_optimizer *optimizer);

/* One update of every parameter of `net` (or of `graph`) from its current gradients. Gradients
 * are kept: zero them before the next backward. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_BUSY,
 * BP_ERR_NONFINITE (nothing changed), BP_ERR_INVALID_ARGUMENT (the optimizer's state was sized
 * for a different number of parameters). */
bp_status bp_optimizer_step(bp_optimizer *optimizer, bp_net *net);
bp_status bp_optimizer_step_graph(bp_optimizer *optimizer, bp_graph *graph);

/* One whole training step of `net` with this optimizer's update: bp_net_zero_grad,
 * bp_net_forward, bp_net_backward (or _labels) and bp_optimizer_step in one call, with the
 * arguments of those calls; the loss before the update is written to *loss (may be NULL). The
 * _labels form is for BP_LOSS_CROSS_ENTROPY. Every argument, and the optimizer's state size, is
 * checked first: bad input changes nothing. If the loss or a gradient turns out not finite
 * (BP_ERR_NONFINITE), the weights and the optimizer's state are unchanged and the gradients hold
 * this step's. Errors: those of the four calls. */
bp_status bp_optimizer_train_step(bp_optimizer *optimizer, bp_net *net, size_t batch,
                                  const float *inputs, size_t input_count, const float *targets,
                                  size_t target_count, float *loss);
bp_status bp_optimizer_train_step_labels(bp_optimizer *optimizer, bp_net *net, size_t batch,
                                         const float *inputs, size_t input_count,
                                         const int32_t *labels, size_t label_count, float *loss);

/* The current learning rate, and setting it (finite, not negative).
 * Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT. */
bp_status bp_optimizer_learning_rate(const bp_optimizer *optimizer, double *out);
bp_status bp_optimizer_set_learning_rate(bp_optimizer *optimizer, double learning_rate);

/* Forgets the state and the step count, as a new optimizer. Errors: BP_ERR_INVALID_HANDLE. */
bp_status bp_optimizer_reset(bp_optimizer *optimizer);

/* What a learning-rate schedule does after its warm-up (see bp_schedule_options). */
typedef enum bp_schedule_rule {
    BP_SCHEDULE_CONSTANT = 0,         /* the base rate throughout */
    BP_SCHEDULE_STEP = 1,             /* x gamma every step_size epochs (StepLR) */
    BP_SCHEDULE_EXPONENTIAL = 2,      /* x gamma every epoch (ExponentialLR) */
    BP_SCHEDULE_COSINE = 3,           /* cosine from the base rate to min_lr over `period` epochs */
    BP_SCHEDULE_REDUCE_ON_PLATEAU = 4 /* x factor after `patience` epochs without improvement */
} bp_schedule_rule;

/* A schedule stepped once per epoch: an optional linear warm-up from warmup_start_factor x the
 * base rate to the base rate over warmup_epochs (LinearLR), then `rule` on the epochs after it.
 * Reduce-on-plateau follows ReduceLROnPlateau in mode "min" with a relative threshold. Start
 * from bp_schedule_options_default. */
typedef struct bp_schedule_options {
    size_t size;
    bp_schedule_rule rule;
    size_t step_size;          /* STEP: epochs between decays (default 1) */
    double gamma;              /* STEP, EXPONENTIAL: the decay factor (default 0.1) */
    size_t period;             /* COSINE: epochs from the base rate to min_lr (default 10) */
    double min_lr;             /* COSINE, REDUCE_ON_PLATEAU: the floor (default 0) */
    size_t warmup_epochs;      /* default 0: no warm-up */
    double warmup_start_factor; /* default 1/3 */
    double factor;             /* REDUCE_ON_PLATEAU: in (0, 1) (default 0.1) */
    size_t patience;           /* REDUCE_ON_PLATEAU: epochs without improvement (default 10) */
    double threshold;          /* REDUCE_ON_PLATEAU: relative improvement needed (default 1e-4) */
    size_t cooldown;           /* REDUCE_ON_PLATEAU: epochs to wait after a reduction (default 0) */
} bp_schedule_options;

/* Fills *out with `rule`'s defaults. Errors: BP_ERR_INVALID_ARGUMENT (unknown rule, out NULL). */
bp_status bp_schedule_options_default(bp_schedule_rule rule, bp_schedule_options *out);

/* Attaches a schedule whose base rate is the optimizer's current learning rate, and sets the
 * rate for epoch 0. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT (NULL, size too
 * small, a bad option). */
bp_status bp_optimizer_set_schedule(bp_optimizer *optimizer, const bp_schedule_options *options);

/* Ends an epoch: advances the schedule, using `metric` (the validation loss, say; NaN when there
 * is none) for reduce-on-plateau, sets the new rate and writes it to *learning_rate (may be
 * NULL). Errors: BP_ERR_INVALID_HANDLE, BP_ERR_STATE (no schedule set). */
bp_status bp_optimizer_schedule_step(bp_optimizer *optimizer, double metric,
                                     double *learning_rate);

/* Clipping of the network's parameter gradients, as torch.nn.utils: by global L2 norm (scaled
 * by max_norm / (norm + 1e-6) when the norm exceeds max_norm; the norm before clipping goes to
 * *total_norm, which may be NULL), or by value (clamped to [-value, value]). Call between
 * backward and the optimizer step. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_INVALID_ARGUMENT
 * (max_norm or value not positive and finite), BP_ERR_NONFINITE (the norm is not finite:
 * nothing clipped). */
bp_status bp_net_clip_grad_norm(bp_net *net, double max_norm, double *total_norm);
bp_status bp_net_clip_grad_value(bp_net *net, double value);

/* ---------------------------------------------------------------------------------------------
 * Training loop: fit and evaluate
 *
 * bp_net_fit trains for a number of epochs over minibatches (reshuffled every epoch from the
 * network's seed), with an optimizer and its schedule (stepped once per epoch, with the monitored
 * loss), optional validation data (given, or split off the end of the training data before
 * shuffling), early stopping that can restore the best weights, and a callback after each epoch.
 * Arguments are checked before training starts; bad ones change nothing. A non-finite loss or
 * gradient stops training with BP_ERR_NONFINITE, leaving the weights and optimizer state of the
 * last good step. The network and the optimizer are busy during the call: the callback must not
 * call into them (such calls fail with BP_ERR_BUSY).
 * ------------------------------------------------------------------------------------------- */

/* What the callback sees after each epoch. Pointers are valid during the callback only. */
typedef struct bp_epoch_report {
    size_t size;                 /* sizeof(bp_epoch_report) of the library */
    size_t epoch;                /* 1-based */
    double train_loss;           /* mean over the epoch's minibatches, weighted by their sizes */
    double train_accuracy;       /* see bp_net_evaluate for how accuracy is counted */
    double validation_loss;      /* NaN without validation data */
    double validation_accuracy;  /* NaN without validation data */
    double learning_rate;        /* the rate used during this epoch */
    size_t layer_count;          /* entries in the two arrays: layers with parameters, in order */
    const double *gradient_norms; /* L2 norm of each layer's gradients on the epoch's last step */
    const double *update_ratios; /* |update| / |weights| of each layer on that step */
    int vanishing;               /* some gradient norm is below vanishing_threshold */
    int exploding;               /* some gradient norm is above exploding_threshold */
} bp_epoch_report;

/* Called after every epoch with `userdata`; return 0 to go on, non-zero to stop training. */
typedef int (*bp_epoch_callback)(const bp_epoch_report *report, void *userdata);

/* Start from bp_fit_options_default, which sets `size` and the defaults shown. */
typedef struct bp_fit_options {
    size_t size;
    size_t batch_size;           /* 32 */
    size_t epochs;               /* 10 */
    int shuffle;                 /* 1: reshuffle every epoch */
    double validation_split;     /* 0: fraction in [0, 1) held out from the end when no
                                    validation set is given */
    size_t patience;             /* 0: never stop early; else epochs without improvement of the
                                    monitored loss (validation loss, or training loss without
                                    validation data) */
    double min_delta;            /* 0: smallest decrease that counts as an improvement */
    int restore_best_weights;    /* 1: on early stopping, put back the best epoch's weights */
    double clip_norm;            /* 0: off; else clip gradients to this global L2 norm */
    double clip_value;           /* 0: off; else clamp gradients to [-clip_value, clip_value] */
    double vanishing_threshold;  /* 1e-7 */
    double exploding_threshold;  /* 1e3 */
    size_t validation_samples;   /* 0: no explicit validation set; else its number of samples, */
    const float *validation_inputs; /* validation_samples * input_width floats, */
    size_t validation_input_count;
    const float *validation_targets; /* with bp_net_fit: validation_samples * output_width floats */
    size_t validation_target_count;
    const int32_t *validation_labels; /* with bp_net_fit_labels: validation_samples labels */
    size_t validation_label_count;
    bp_epoch_callback callback;  /* NULL: none */
    void *userdata;              /* passed to the callback */
} bp_fit_options;

/* The outcome of bp_net_fit. Set `size` to sizeof(bp_fit_result) before the call. */
typedef struct bp_fit_result {
    size_t size;
    size_t epochs_run;
    size_t best_epoch;           /* the epoch with the lowest monitored loss (1-based) */
    double best_loss;
    int stopped_early;
    int stopped_by_callback;
    double final_train_loss;
    double final_validation_loss; /* NaN without validation data */
} bp_fit_result;

/* Fills *out with the defaults. Errors: BP_ERR_INVALID_ARGUMENT (out NULL). */
bp_status bp_fit_options_default(bp_fit_options *out);

/* Trains `net` with `optimizer` on `samples` samples: `inputs` holds samples * input_width floats,
 * and the targets are float targets (bp_net_fit, samples * output_width floats, for MSE) or class
 * labels (bp_net_fit_labels, `samples` labels, for cross-entropy). `options` may be NULL for the
 * defaults; `result` may be NULL. Errors: BP_ERR_INVALID_HANDLE, BP_ERR_BUSY,
 * BP_ERR_INVALID_ARGUMENT (NULL buffers, counts that do not match, bad options, labels out of
 * range, the wrong call for the network's loss), BP_ERR_STATE (no layers), BP_ERR_NONFINITE
 * (NaN or infinity in the data: nothing changes; or during training: see above). */
bp_status bp_net_fit(bp_net *net, bp_optimizer *optimizer, size_t samples, const float *inputs,
                     size_t input_count, const float *targets, size_t target_count,
                     const bp_fit_options *options, bp_fit_result *result);
bp_status bp_net_fit_labels(bp_net *net, bp_optimizer *optimizer, size_t samples,
                            const float *inputs, size_t input_count, const int32_t *labels,
                            size_t label_count, const bp_fit_options *options,
                            bp_fit_result *result);

/* The mean loss and the accuracy over `samples` samples, in inference mode (dropout off), in
 * batches of 256. Accuracy counts the argmax of the outputs against the label (cross-entropy),
 * against the argmax of the target (MSE with several outputs), or output > 0.5 against
 * target > 0.5 (MSE with one output). Either out-pointer may be NULL. Gradients are untouched.
 * Errors: as bp_net_fit. */
bp_status bp_net_evaluate(bp_net *net, size_t samples, const float *inputs, size_t input_count,
                          const float *targets, size_t target_count, double *loss,
                          double *accuracy);
bp_status bp_net_evaluate_labels(bp_net *net, size_t samples, const float *inputs,
                                 size_t input_count, const int32_t *labels, size_t label_count,
                                 double *loss, double *accuracy);

#ifdef __cplusplus
}
#endif

#endif /* BACKPROP_H */
