#include "common/err.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"

/* Texts are formatted whole (up to FLEET_ERR_RAW_MAX), scrubbed, escaped, and only then cut to
 * FLEET_ERR_TEXT_MAX: a secret or a UTF-8 character straddling the cut never shows in part. */
static void set_text(char *dst, size_t cap, const char *fmt, va_list ap)
{
	char *raw = xmalloc(FLEET_ERR_RAW_MAX);
	int n = vsnprintf(raw, FLEET_ERR_RAW_MAX, fmt, ap);

	if (n < 0)
		n = 0;
	fleet_log_clean(dst, cap, raw, (size_t)n < FLEET_ERR_RAW_MAX ? (size_t)n : FLEET_ERR_RAW_MAX - 1);
	xfree(&raw);
}

void fleet_err_clear(struct fleet_err *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

int fleet_err_set(struct fleet_err *err, enum fleet_err_class cls, enum fleet_err_scope scope,
		  const char *code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	memset(err, 0, sizeof(*err));
	err->cls = cls;
	err->scope = scope;
	if (code)
		snprintf(err->code, sizeof(err->code), "%s", code);
	va_start(ap, fmt);
	set_text(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

void fleet_err_detail(struct fleet_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	set_text(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
}

/* A prefix and the message, cut to FLEET_ERR_RAW_MAX at the most, are cleaned and cut to
 * FLEET_ERR_TEXT_MAX: a text cut at the first cap is cut again, far shorter, at the second. */
_Static_assert(FLEET_ERR_RAW_MAX > 4 * FLEET_ERR_TEXT_MAX, "the prefix's buffer is far longer than a message");
void fleet_err_prefix(struct fleet_err *err, const char *fmt, ...)
{
	struct fleet_buf b = FLEET_BUF_INIT(FLEET_ERR_RAW_MAX);
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	fleet_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	fleet_buf_add_str(&b, ": ");
	fleet_buf_add_str(&b, err->message);
	fleet_log_clean(err->message, sizeof(err->message), fleet_buf_cstr(&b), b.len);
	fleet_buf_release(&b);
}

int fleet_err_is_set(const struct fleet_err *err)
{
	return err && err->cls != FLEET_ERR_NONE;
}

static const char *const class_names[] = {
	[FLEET_ERR_NONE] = "none",	     [FLEET_ERR_TRANSIENT] = "transient",
	[FLEET_ERR_THROTTLED] = "throttled", [FLEET_ERR_PERMANENT] = "permanent",
	[FLEET_ERR_AUTH] = "auth",	     [FLEET_ERR_BUG] = "bug",
};

static const char *const scope_names[] = {
	[FLEET_SCOPE_MESSAGE] = "message",
	[FLEET_SCOPE_FOLDER] = "folder",
	[FLEET_SCOPE_ACCOUNT] = "account",
	[FLEET_SCOPE_RUN] = "run",
};

const char *fleet_err_class_name(enum fleet_err_class cls)
{
	return FLEET_ENUM_NAME(class_names, cls, "unknown");
}

const char *fleet_err_scope_name(enum fleet_err_scope scope)
{
	return FLEET_ENUM_NAME(scope_names, scope, "unknown");
}

int fleet_err_class_from_name(const char *name, enum fleet_err_class *out)
{
	for (unsigned i = 0; i < sizeof(class_names) / sizeof(class_names[0]); i++) {
		if (strcmp(class_names[i], name) == 0) {
			*out = (enum fleet_err_class)i;
			return 0;
		}
	}
	return -1;
}

int fleet_err_retryable(const struct fleet_err *err)
{
	return err && (err->cls == FLEET_ERR_TRANSIENT || err->cls == FLEET_ERR_THROTTLED);
}
