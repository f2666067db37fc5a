/* Unit tests for src/admin/prom.c (label escaping, the folded latency histogram) and the JSON
 * string escaping of src/core/sbuf.c (the ";json" stats page). */
#include <string.h>

#include <keel/common.h>
#include <keel/health.h>
#include <keel/prom.h>
#include <keel/sbuf.h>
#include <keel/stats.h>

#include "cfgload.h"
#include "unit.h"

static char *label(const char *s)
{
	static char out[256];
	struct sbuf b = {0};

	prom_label(&b, s);
	snprintf(out, sizeof(out), "%s", b.len ? b.p : "");
	free(b.p);
	return out;
}

TEST(prom_label_escaping)
{
	CHECK_STR(label("plain-name_1.x:y"), "plain-name_1.x:y");
	CHECK_STR(label("a\"b"), "a\\\"b");
	CHECK_STR(label("a\\b"), "a\\\\b");
	CHECK_STR(label("a\nb"), "a\\nb");
	CHECK_STR(label("\"\\\n"), "\\\"\\\\\\n");
	CHECK_STR(label("caf\xc3\xa9"), "caf??");
	CHECK_STR(label(""), "");
}

/* The value of the line starting with prefix in text, or -1. */
static double value_of(const char *text, const char *prefix)
{
	const char *p = text;
	size_t n = strlen(prefix);

	while (p && *p) {
		if (!strncmp(p, prefix, n))
			return strtod(p + n, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

TEST(prom_histogram_cumulative)
{
	static const char *const les[] = {"0.001", "0.005", "0.01", "0.025", "0.05", "0.1",
					  "0.25",  "0.5",   "1",    "2.5",   "5",    "10", "+Inf"};
	uint64_t fine[LAT_BUCKETS] = {0};
	struct sbuf b = {0};
	char pfx[128];
	double prev = -1, v;
	size_t i;

	/* samples at 100 us, 3 ms (x2), 40 ms, 700 ms, 30 s, 2 hours */
	fine[lat_bucket(100)] += 1;
	fine[lat_bucket(3000)] += 2;
	fine[lat_bucket(40000)] += 1;
	fine[lat_bucket(700000)] += 1;
	fine[lat_bucket(30000000)] += 1;
	fine[lat_bucket(7200000000ull)] += 1;
	prom_histogram(&b, "t_seconds", "backend=\"b\",server=\"s\"", fine);
	if (!CHECK(!b.oom && b.len))
		return;
	for (i = 0; i < ARRAY_SIZE(les); i++) {
		snprintf(pfx, sizeof(pfx), "t_seconds_bucket{backend=\"b\",server=\"s\",le=\"%s\"} ",
			 les[i]);
		v = value_of(b.p, pfx);
		CHECK(v >= prev); /* cumulative */
		prev = v;
	}
	CHECK(value_of(b.p, "t_seconds_bucket{backend=\"b\",server=\"s\",le=\"0.001\"} ") == 1);
	CHECK(value_of(b.p, "t_seconds_bucket{backend=\"b\",server=\"s\",le=\"0.005\"} ") == 3);
	CHECK(value_of(b.p, "t_seconds_bucket{backend=\"b\",server=\"s\",le=\"0.05\"} ") == 4);
	CHECK(value_of(b.p, "t_seconds_bucket{backend=\"b\",server=\"s\",le=\"1\"} ") == 5);
	CHECK(value_of(b.p, "t_seconds_bucket{backend=\"b\",server=\"s\",le=\"10\"} ") == 5);
	CHECK(value_of(b.p, "t_seconds_bucket{backend=\"b\",server=\"s\",le=\"+Inf\"} ") == 7);
	CHECK(value_of(b.p, "t_seconds_count{backend=\"b\",server=\"s\"} ") == 7);
	/* The sum from bucket midpoints: within a fine bucket's width (25%) of the true sum, except
	 * the open-ended last bucket, which stands for about 4295 s whatever the sample was. */
	v = value_of(b.p, "t_seconds_sum{backend=\"b\",server=\"s\"} ");
	{
		double head = 0.0001 + 0.006 + 0.04 + 0.7 + 30;
		double last = (double)(lat_bucket_us(LAT_BUCKETS - 2) + lat_bucket_us(LAT_BUCKETS - 1)) /
			      2 / 1e6;

		CHECK(v > (head * 0.75 + last) && v < (head * 1.25 + last));
	}
	free(b.p);
}

TEST(prom_histogram_empty_and_no_labels)
{
	uint64_t fine[LAT_BUCKETS] = {0};
	struct sbuf b = {0};

	prom_histogram(&b, "h", "", fine);
	CHECK(strstr(b.p, "h_bucket{le=\"0.001\"} 0\n") != NULL);
	CHECK(strstr(b.p, "h_bucket{le=\"+Inf\"} 0\n") != NULL);
	CHECK(strstr(b.p, "h_sum{} 0.000000\nh_count{} 0\n") != NULL);
	free(b.p);
}

TEST(json_string_escaping)
{
	struct sbuf b = {0};

	sbuf_json_str(&b, "a\"b\\c\n\r\t\x01\x7f\xc3\xa9/");
	CHECK_STR(b.p, "\"a\\\"b\\\\c\\n\\r\\t\\u0001\x7f\\u00c3\\u00a9/\"");
	b.len = 0;
	sbuf_json_str(&b, "");
	CHECK_STR(b.p, "\"\"");
	free(b.p);
}

TEST(sbuf_grows)
{
	struct sbuf b = {0};
	int i;

	for (i = 0; i < 10000; i++)
		sbuf_printf(&b, "%d,", i);
	CHECK(!b.oom);
	CHECK(b.len > 40000 && !strncmp(b.p, "0,1,2,", 6));
	CHECK(!strcmp(b.p + b.len - 5, "9999,"));
	free(b.p);
}

UNIT_RUN()
