"""Study helpers: learning dynamics, unit matching, plotting; built on measures and networks."""
