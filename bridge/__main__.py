from bridge.cli import cli

cli(prog_name="python -m bridge")
