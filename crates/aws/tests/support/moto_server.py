"""moto's server, plus one thing released moto cannot do: script a Lambda *error*.

moto's lambda-simple backend (no Docker) answers every invoke with the next queued result
(POST /moto-api/static/lambda-simple/response) as a success. A queued result of the form
{"__docpipe_error__": {"errorType": "...", "errorMessage": "..."}} is answered here the way
the Lambda service answers when a handler returns an error: HTTP 200 with the header
X-Amz-Function-Error: Unhandled and the error JSON as the payload. moto's Step Functions
interpreter then reads errorType as the task's Error, as Step Functions does on AWS.
Everything else is moto as released. Started and stopped by the docpipe-aws test harness.
"""

import json
import sys

from moto.awslambda_simple import models

_invoke = models.LambdaSimpleBackend.invoke


def invoke(self, function_name, qualifier, body, headers, response_headers):
    result = _invoke(self, function_name, qualifier, body, headers, response_headers)
    try:
        parsed = json.loads(result)
    except (TypeError, ValueError):
        return result
    if isinstance(parsed, dict) and "__docpipe_error__" in parsed:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(parsed["__docpipe_error__"]).encode()
    return result


models.LambdaSimpleBackend.invoke = invoke

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
