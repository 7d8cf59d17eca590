"""The Dockerfile front end: text → typed stages, variable substitution, the stage plan, `--change`.

What the executor calls (docs/builder.md):

    parse_dockerfile(text) -> Dockerfile             global ARGs + stages of typed instructions
    global_scope(df.global_args, build_args, automatic, df.escape) -> dict   FROM's variables
    plan(df, target, meta) -> BuildPlan               needed stages, their order and dependencies
    StageScope(meta, build_args, image_env, escape)   declare(Arg) / set_env / env() / run_env() / proxy_env()
    expand(word, env, escape) / expand_words(text, env, escape)
    expand_heredoc(content, env)                      a COPY/ADD heredoc body whose delimiter is unquoted
    run_process(run, shell) -> RunProcess             a RUN's argv (and heredoc script files)
    apply_instruction(config, instruction, env, escape, cmd_set) / apply_changes(config, changes)
    healthcheck(instruction) -> dict                 a HEALTHCHECK as the image config's Healthcheck
    unused_build_args(build_args, plan.declared) -> unused_build_args_warning(...)
    warnings_text(df.warnings)                        the parser's warnings as dockerd prints them
"""
from engine.builder.dockerfile.build import parse_dockerfile
from engine.builder.dockerfile.changes import apply_changes, apply_instruction, healthcheck
from engine.builder.dockerfile.errors import DockerfileError, SubstitutionError
from engine.builder.dockerfile.lexer import expand, expand_heredoc, expand_words
from engine.builder.dockerfile.parser import warnings_text
from engine.builder.dockerfile.runform import RunFile, RunProcess, run_process
from engine.builder.dockerfile.scope import (
    StageScope, global_scope, unused_build_args, unused_build_args_warning,
)
from engine.builder.dockerfile.stages import BuildPlan, find_target, plan

__all__ = [
    "BuildPlan", "DockerfileError", "RunFile", "RunProcess", "StageScope", "SubstitutionError",
    "apply_changes", "apply_instruction",
    "expand", "expand_heredoc", "expand_words", "find_target", "global_scope", "healthcheck", "parse_dockerfile",
    "plan",
    "run_process", "warnings_text",
    "unused_build_args", "unused_build_args_warning",
]
