"""Fuzz the server's OpenAPI schema with schemathesis: whatever arrives, no 5xx.

The generator is scripted (the fuzzer sends hundreds of requests; the model is not what is under test here), the
app is the real one, served in-process through its ASGI interface.
"""

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from ponder.server import ServeConfig, create_app
from ponder.testing import ScriptedGenerator

app = create_app(ScriptedGenerator(lambda request, i: "Step one.\n\nThe answer is 4"),
                 ServeConfig(model_name="scripted", default_strategy="greedy", max_seconds=5, max_n=4))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_5xx(case):
    case.call_and_validate(checks=[not_a_server_error])
