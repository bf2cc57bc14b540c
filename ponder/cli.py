import typer
app = typer.Typer()
@app.command()
def models(action: str, name: str = ""):
    from ponder import models as m
    m.pull(name)
