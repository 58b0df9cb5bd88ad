from parkwatch.cli import run

run()
