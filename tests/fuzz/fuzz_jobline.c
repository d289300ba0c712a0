/* fuzz_jobline.c: the job-line parser (qt_job_parse) on any bytes. A line
 * becomes a job or an invalid result; either way the result line written
 * for it must be strict JSON in valid UTF-8 (defect 10 of issue 12). */
#include <cJSON.h>

#include "fuzz_common.h"
#include "quotatop/jobs.h"

static void check_line(const qt_result *res)
{
    char *s = qt_result_to_json(res);
    if (!s)
        return;
    if (qt_utf8_invalid_at(s, strlen(s)) >= 0)
        abort();
    cJSON *o = cJSON_Parse(s);
    if (!o)
        abort();
    cJSON_Delete(o);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const qt_config *cfg = fuzz_config();
    qt_job *job = NULL;
    char *id = NULL, *wf = NULL, err[300];
    qt_err r = qt_job_parse((const char *)data, size, 1, cfg, &job, &id, &wf, err, sizeof err);
    if (r == QT_OK) {
        qt_result res = { .id = job->id, .workflow = job->workflow, .status = QT_STATUS_OK,
                          .model = job->model, .content = job->id };
        check_line(&res);
        qt_job_free(job);
    } else {
        qt_result res = { .id = id, .workflow = wf, .status = QT_STATUS_INVALID, .error = err };
        check_line(&res);
    }
    free(id);
    free(wf);
    return 0;
}
