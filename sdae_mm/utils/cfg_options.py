"""``--cfg-options`` merged into a config, refusing top-level keys the config lacks."""
import difflib
from typing import Optional

#: Prefix of a ``--cfg-options`` key that adds a new top-level key on purpose.
NEW_KEY_PREFIX = '+'


def merge_cfg_options(cfg, options: Optional[dict]):
    """Merge ``--cfg-options`` into ``cfg`` (mmengine's ``merge_from_dict``).

    mmengine adds a misspelt key as a new one, so ``optim_wraper.optimizer.lr=...`` would
    be ignored and the run train with the default. Here a key whose top level the config
    does not have is an error that suggests the closest existing keys; a key written with
    a leading ``+`` (``+new_key.sub=1``) adds a new top-level key on purpose.

    Args:
        cfg (Config): The config, changed in place.
        options (dict, optional): ``key -> value`` as parsed by mmengine's ``DictAction``.

    Returns:
        Config: ``cfg``.

    Raises:
        ValueError: A top-level key the config does not have, without the ``+`` prefix.
    """
    if not options:
        return cfg
    merged, unknown = {}, []
    for key, value in options.items():
        if key.startswith(NEW_KEY_PREFIX):
            key = key[len(NEW_KEY_PREFIX):]
        elif key.split('.', 1)[0] not in cfg:
            unknown.append(key)
        merged[key] = value
    if unknown:
        lines = []
        for key in unknown:
            top = key.split('.', 1)[0]
            close = difflib.get_close_matches(top, list(cfg.keys()), n=3, cutoff=0.6)
            hint = f'did you mean {" or ".join(repr(c) for c in close)}?' if close else \
                'no similar key'
            lines.append(f'{key!r}: the config has no top-level key {top!r} ({hint})')
        raise ValueError('--cfg-options: ' + '; '.join(lines) + f'. To add a new key on '
                         f'purpose, write it as {NEW_KEY_PREFIX}{unknown[0]}=...')
    cfg.merge_from_dict(merged)
    return cfg


__all__ = ['merge_cfg_options', 'NEW_KEY_PREFIX']
