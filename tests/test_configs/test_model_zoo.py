"""model-index.yml and the per-method metafiles/READMEs (OpenMMLab model-zoo format)."""
import os.path as osp
import re

import pytest
import yaml

METHODS = ('sdae', 'dbot', 'rc_mae', 'mae')


@pytest.fixture(scope='module')
def metafiles(repo_root):
    with open(osp.join(repo_root, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert index['Import'] == [f'configs/{m}/metafile.yml' for m in METHODS]
    out = {}
    for path in index['Import']:
        with open(osp.join(repo_root, path)) as f:
            out[path] = yaml.safe_load(f)
    return out


def test_metafiles_are_well_formed(repo_root, metafiles):
    names = set()
    for path, meta in metafiles.items():
        collections = {c['Name']: c for c in meta['Collections']}
        assert len(collections) == 1
        for coll in collections.values():
            assert coll['Paper']['URL'].startswith('https://arxiv.org/abs/')
            assert coll['Code']['URL'].startswith('https://github.com/')
            assert osp.isfile(osp.join(repo_root, coll['README']))
        models = meta['Models']
        for model in models:
            assert model['Name'] not in names, model['Name']
            names.add(model['Name'])
            assert model['In Collection'] in collections
            assert osp.isfile(osp.join(repo_root, model['Config'])), model['Config']
            if model['Metadata'].get('Official Weights'):
                check_official_entry(model)
                continue
            assert 'Weights' not in model  # no sdae-mm weights are published
            if model['Results'] is None:  # a pretraining recipe
                assert model['Config'].startswith(osp.dirname(path))
                continue
            assert 'paper-reported' in model['Metadata']['Results Source']
            for result in model['Results']:
                assert set(result) == {'Task', 'Dataset', 'Metrics'}
                assert all(0 < v < 100 for v in result['Metrics'].values())
        own = {m['Name'] for m in models}
        for model in models:
            assert set(model.get('Downstream', [])) <= own


def check_official_entry(model):
    """The authors' released weights: URL, layout, branch, published numbers, source."""
    from sdae_mm.checkpoint import FORMATS
    meta = model['Metadata']
    assert model['Name'].startswith('official_')
    assert re.fullmatch(r'https://\S+\.pth', model['Weights']), model['Weights']
    assert meta['Checkpoint Layout'].split()[0] in FORMATS
    assert meta['Branch'] in ('student', 'teacher')
    assert meta['Stage'] in ('pretrained', 'fine-tuned')
    assert isinstance(meta['Converter Support'], bool)
    assert 'official' in meta['Weights Source'] and '@' in meta['Weights Source']
    assert model['Results'] and all(0 < v < 100 for r in model['Results']
                                    for v in r['Metrics'].values())


def test_official_weights_are_listed(metafiles):
    official = {path.split('/')[1]: [m for m in meta['Models']
                                     if m['Metadata'].get('Official Weights')]
                for path, meta in metafiles.items()}
    assert official['sdae'] == []  # the SdAE authors have released no weights
    urls = {m['Weights'] for ms in official.values() for m in ms}
    assert 'https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_base.pth' in urls
    assert len([m for m in official['dbot'] if m['Metadata']['Stage'] == 'pretrained']) == 9
    rc_pre = [m for m in official['rc_mae'] if m['Metadata']['Stage'] == 'pretrained']
    assert len(rc_pre) == 3 and {m['Metadata']['Branch'] for m in rc_pre} == {'teacher'}


def test_readmes_show_the_metafile_numbers_as_paper_reported(repo_root, metafiles):
    for path, meta in metafiles.items():
        folder = osp.dirname(path)
        with open(osp.join(repo_root, folder, 'README.md')) as f:
            readme = f.read()
        assert re.search(r'numbers below are reported (in the paper|by the authors)', readme)
        assert 'paper-reported' in readme and 'tools/convert_checkpoint.py' in readme
        for model in meta['Models']:
            if model['Metadata'].get('Official Weights'):
                continue  # listed in the metafile and docs/checkpoints.md
            for result in model['Results'] or []:
                for value in result['Metrics'].values():
                    assert f'**{value}' in readme, (folder, model['Name'], value)
            # every config of the metafile is linked from the README
            assert osp.basename(model['Config']) in readme, model['Config']
        # every linked config exists
        for link in re.findall(r'\]\((\.\.?/[^)]+\.py)\)', readme):
            assert osp.isfile(osp.normpath(osp.join(repo_root, folder, link))), link
        # and every command names an existing config
        for cfg in re.findall(r'(configs/[\w./-]+\.py)', readme):
            assert osp.isfile(osp.join(repo_root, cfg)), cfg
