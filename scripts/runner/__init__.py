"""The local runner: plays AWS Lambda and ECS Fargate for a lew stack deployed to moto.

moto stores the launcher function and the worker tasks but runs neither. This process does,
reading everything it acts on back from moto, so the wiring lew produced is what gets exercised.
Each module's docstring says in full what its part does:

Lambda side (S3 -> launcher)
    s3_side             polls the bucket, matches the notification configuration, checks the
                        function's resource policy, builds the event S3 sends
    lambda_side         runs the deployed handler like an async invocation: reserved
                        concurrency, retries, the on-failure destination, warm environments
    lambda_environment  one execution environment: a process that imported the handler once
    lambda_code         the function's code, from Code.Location or the embedded launcher
Fargate side (RunTask -> worker)
    fargate_side        a worker/worker.py process for every RUNNING task, StopTask when it ends
EventBridge's part (a task stops, a schedule fires -> launcher)
    events_side         ECS's event for every task that stops and the schedule rules' events, to
                        the targets of the matching enabled rules read back from moto
Plumbing
    pipeline            both sides wired together, the S3 and ECS polling loops, shutdown
    cli                 arguments, start-up checks, main
    aws, output, logs   boto3 clients; the JSON lines on stdout; CloudWatch Logs
    runner.py           the entry point
Shared with the rest of the test tooling (scripts/testkit): the IAM-condition evaluator and the
process helpers.

Usage (endpoint and credentials from the usual AWS variables):
    export AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_REGION=eu-west-1 \\
        AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    .venv/bin/python scripts/runner/runner.py --app NAME [--once] [--include-existing] \\
        [--schedule-every SECONDS] [--drop-task-events]      (SIGUSR1: fire the schedules now)

What moto 5.2.5 does that this runner works around is said where it is worked around:
lambda_code (Code.Location names a real AWS host and moto serves the package nowhere) and
fargate_side (DescribeTasks walks a task towards STOPPED while its worker runs).
"""
