"""What every bench shares: writing its JSON report (imported as a sibling module, since benches
run as scripts: `python bench/<name>.py`)."""
import json
import os


def write_json(path, result):
    """Write ``result`` as indented JSON to ``path``, creating its folder."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
