/*
 * fuzz_csv.c: libFuzzer harness for the CSV loader, bp_dataset_load_csv.
 *
 * The first byte of an input picks the options (below); the rest is the file, written to a
 * memfd and read through its /proc/self/fd path, so no disk is touched. The loader must refuse
 * the file with a documented status (BP_ERR_FORMAT, or BP_ERR_INVALID_ARGUMENT for a delimiter
 * or label column the options get wrong) and a message, or load it. A loaded dataset is then
 * checked against an independent reading of the same bytes, following the grammar the header
 * gives (lines split at "\n", one trailing "\r" dropped, blank lines and a byte order mark
 * skipped, spaces and one pair of quotes around a field): the row count, and every feature and
 * label, which must equal strtod's reading of the field rounded to float (both round
 * correctly, so they agree bit for bit).
 *
 * The option byte: bits 0-2 the delimiter (",", ";", tab, "|", space, ":", "x", or NUL, which
 * must be refused), bit 3 has_header, bit 4 has_label, bits 5-6 the label column (-1, 0, 1,
 * -2), bit 7 passes NULL options (the defaults) instead.
 *
 * Build and run: `make fuzz-smoke` or `make fuzz FUZZ_SECONDS=300` (docs/RELIABILITY.md).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_oracle.h"

static const char DELIMITERS[8] = {',', ';', '\t', '|', ' ', ':', 'x', '\0'};
static const int64_t LABEL_COLUMNS[4] = {-1, 0, 1, -2};

/* One memfd for the whole run, rewritten for every input. */
static int csv_fd = -1;
static char csv_path[64];

static void write_file(const uint8_t *data, size_t size) {
    if (csv_fd < 0) {
        csv_fd = memfd_create("fuzz.csv", MFD_CLOEXEC);
        if (csv_fd < 0) {
            fuzz_fail("memfd_create failed");
        }
        snprintf(csv_path, sizeof csv_path, "/proc/self/fd/%d", csv_fd);
    }
    if (ftruncate(csv_fd, 0) != 0) {
        fuzz_fail("ftruncate of the memfd failed");
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(csv_fd, data + done, size - done, (off_t)done);
        if (n <= 0) {
            fuzz_fail("writing the memfd failed");
        }
        done += (size_t)n;
    }
}

/* ---- the independent reading ------------------------------------------------------------ */

typedef struct line {
    const uint8_t *start;
    size_t length; /* without the "\n" and one trailing "\r" */
} line;

/* Splits the text into lines as the header says; returns the number of lines, all of them. */
static size_t split_lines(const uint8_t *text, size_t size, line *lines, size_t capacity) {
    size_t count = 0, position = 0;
    if (size >= 3 && text[0] == 0xEF && text[1] == 0xBB && text[2] == 0xBF) {
        position = 3;
    }
    while (position < size) {
        size_t end = position;
        while (end < size && text[end] != '\n') {
            end++;
        }
        size_t stop = end;
        if (stop > position && text[stop - 1] == '\r') {
            stop--;
        }
        if (count < capacity) {
            lines[count].start = text + position;
            lines[count].length = stop - position;
        }
        count++;
        position = end + 1;
    }
    return count;
}

static int is_blank(const line *l) {
    for (size_t i = 0; i < l->length; i++) {
        if (l->start[i] != ' ' && l->start[i] != '\t') {
            return 0;
        }
    }
    return 1;
}

/* The header's grammar: [+-] (digits [. [digits]] | . digits) [(e|E) [+-] digits]. */
static int is_number(const char *s) {
    size_t digits = 0;
    if (*s == '+' || *s == '-') {
        s++;
    }
    while (*s >= '0' && *s <= '9') {
        s++, digits++;
    }
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            s++, digits++;
        }
    }
    if (digits == 0) {
        return 0;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') {
            s++;
        }
        if (!(*s >= '0' && *s <= '9')) {
            return 0;
        }
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    }
    return *s == '\0';
}

/* The value of field `column` of a data line the loader accepted, read with strtod. */
static double field_value(const line *l, char delimiter, size_t column) {
    size_t start = 0, field = 0;
    while (field < column) {
        while (l->start[start] != (uint8_t)delimiter) {
            start++;
        }
        start++;
        field++;
    }
    size_t end = start;
    while (end < l->length && l->start[end] != (uint8_t)delimiter) {
        end++;
    }
    /* Spaces and tabs around the field (unless one of them is the delimiter), then quotes. */
    while (start < end && (l->start[start] == ' ' || l->start[start] == '\t') &&
           l->start[start] != (uint8_t)delimiter) {
        start++;
    }
    while (end > start && (l->start[end - 1] == ' ' || l->start[end - 1] == '\t') &&
           l->start[end - 1] != (uint8_t)delimiter) {
        end--;
    }
    if (end - start >= 2 && l->start[start] == '"' && l->start[end - 1] == '"') {
        start++;
        end--;
    }
    size_t length = end - start;
    char *text = malloc(length + 1);
    if (length == 0 || text == NULL) {
        fuzz_fail("the loader accepted an empty field");
    }
    memcpy(text, l->start + start, length);
    text[length] = '\0';
    if (!is_number(text)) {
        fuzz_fail("the loader accepted \"%s\", which the header's grammar does not allow", text);
    }
    char *rest = NULL;
    double value = strtod(text, &rest);
    if (*rest != '\0') {
        fuzz_fail("the loader accepted \"%s\", which is not a number", text);
    }
    free(text);
    return value;
}

static int same_float(float a, float b) {
    return memcmp(&a, &b, sizeof a) == 0 || (a == 0 && b == 0);
}

/* The dataset agrees with an independent reading of `text`. */
static void check_dataset(const bp_dataset *dataset, const uint8_t *text, size_t size,
                          const bp_csv_options *options) {
    bp_status status;
    size_t rows = 0, features = 0;
    EXPECT(status, bp_dataset_size(dataset, &rows, &features), BP_OK);

    size_t line_count = split_lines(text, size, NULL, 0);
    line *lines = malloc((line_count + 1) * sizeof *lines);
    split_lines(text, size, lines, line_count);
    size_t data_lines = 0, header = options->has_header ? 1 : 0;
    line *data = malloc((line_count + 1) * sizeof *data);
    for (size_t i = 0; i < line_count; i++) {
        if (!is_blank(&lines[i])) {
            if (header > 0) {
                header--;
            } else {
                data[data_lines++] = lines[i];
            }
        }
    }
    if (rows != data_lines || rows == 0) {
        fuzz_fail("the dataset has %zu rows; the file has %zu data lines", rows, data_lines);
    }
    size_t columns = features + (options->has_label ? 1 : 0);
    size_t label = (size_t)-1;
    if (options->has_label) {
        int64_t c = options->label_column;
        label = (size_t)(c < 0 ? (int64_t)columns + c : c);
    }

    float *values = malloc(rows * features * sizeof(float) + 1);
    float *targets = malloc(rows * sizeof(float) + 1);
    int32_t *labels = malloc(rows * sizeof(int32_t) + 1);
    EXPECT(status, bp_dataset_features(dataset, values, rows * features), BP_OK);
    bp_status target_status, label_status;
    if (options->has_label) {
        EXPECT(target_status, bp_dataset_targets(dataset, targets, rows), BP_OK, BP_ERR_FORMAT);
        EXPECT(label_status, bp_dataset_labels(dataset, labels, rows), BP_OK, BP_ERR_FORMAT);
    } else {
        EXPECT(target_status, bp_dataset_targets(dataset, targets, rows),
               BP_ERR_INVALID_ARGUMENT);
        EXPECT(label_status, bp_dataset_labels(dataset, labels, rows), BP_ERR_INVALID_ARGUMENT);
    }

    int all_targets_fit = 1, all_labels_whole = 1;
    for (size_t r = 0; r < rows; r++) {
        size_t f = 0;
        for (size_t c = 0; c < columns; c++) {
            double value = field_value(&data[r], options->delimiter, c);
            if (c == label) {
                float single = (float)value;
                all_targets_fit &= isfinite(single) != 0;
                all_labels_whole &= value == trunc(value) && value >= INT32_MIN &&
                                    value <= INT32_MAX;
                if (target_status == BP_OK && !same_float(targets[r], single)) {
                    fuzz_fail("row %zu: target %.9g, but the field reads %.17g", r, targets[r],
                              value);
                }
                if (label_status == BP_OK && labels[r] != (int32_t)value) {
                    fuzz_fail("row %zu: label %d, but the field reads %.17g", r, labels[r],
                              value);
                }
            } else {
                float expected = (float)value;
                if (!isfinite(values[r * features + f]) ||
                    !same_float(values[r * features + f], expected)) {
                    fuzz_fail("row %zu, column %zu: feature %.9g, but the field reads %.17g", r,
                              c, values[r * features + f], value);
                }
                f++;
            }
        }
    }
    if (options->has_label && (target_status == BP_OK) != all_targets_fit) {
        fuzz_fail("bp_dataset_targets returned %s, but every target fits a float: %d",
                  bp_status_string(target_status), all_targets_fit);
    }
    if (options->has_label && (label_status == BP_OK) != all_labels_whole) {
        fuzz_fail("bp_dataset_labels returned %s, but every label is a whole int32: %d",
                  bp_status_string(label_status), all_labels_whole);
    }
    free(values);
    free(targets);
    free(labels);
    free(lines);
    free(data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) {
        return 0;
    }
    uint8_t choice = data[0];
    bp_csv_options options;
    bp_status status;
    EXPECT(status, bp_csv_options_default(&options), BP_OK);
    int defaults = (choice & 0x80) != 0;
    if (!defaults) {
        options.delimiter = DELIMITERS[choice & 7];
        options.has_header = (choice >> 3) & 1;
        options.has_label = (choice >> 4) & 1;
        options.label_column = LABEL_COLUMNS[(choice >> 5) & 3];
    }
    write_file(data + 1, size - 1);

    bp_dataset *dataset = (bp_dataset *)(uintptr_t)0x5e117;
    EXPECT(status, bp_dataset_load_csv(csv_path, defaults ? NULL : &options, &dataset), BP_OK,
           BP_ERR_FORMAT, BP_ERR_INVALID_ARGUMENT);
    if (status != BP_OK) {
        if (dataset != (bp_dataset *)(uintptr_t)0x5e117) {
            fuzz_fail("a failed bp_dataset_load_csv wrote *out");
        }
        if (status == BP_ERR_INVALID_ARGUMENT && options.delimiter != '\0' &&
            !options.has_label) {
            fuzz_fail("INVALID_ARGUMENT without a bad delimiter or a label column to get wrong");
        }
        return 0;
    }
    if (options.delimiter == '\0') {
        fuzz_fail("a NUL delimiter was accepted");
    }
    check_dataset(dataset, data + 1, size - 1, &options);
    EXPECT(status, bp_dataset_free(dataset), BP_OK);
    return 0;
}
