#include "common/err.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

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
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	fleet_log_scrub(err->message, sizeof(err->message));
	return -1;
}

void fleet_err_detail(struct fleet_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	fleet_log_scrub(err->detail, sizeof(err->detail));
}

void fleet_err_prefix(struct fleet_err *err, const char *fmt, ...)
{
	char prefix[FLEET_ERR_TEXT_MAX];
	char old[FLEET_ERR_TEXT_MAX];
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->message, sizeof(old));
	snprintf(err->message, sizeof(err->message), "%s: %s", prefix, old);
	fleet_log_scrub(err->message, sizeof(err->message));
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
	if ((unsigned)cls < sizeof(class_names) / sizeof(class_names[0]))
		return class_names[cls];
	return "unknown";
}

const char *fleet_err_scope_name(enum fleet_err_scope scope)
{
	if ((unsigned)scope < sizeof(scope_names) / sizeof(scope_names[0]))
		return scope_names[scope];
	return "unknown";
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
