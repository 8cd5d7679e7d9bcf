"""Tests of tools/analysis_tools/benchmark_step.py (tiny configs, in-process)."""
import json

import pytest
import torch
import torch.nn.functional as F

from tools.analysis_tools import benchmark_step as bm

# DeiT-Tiny encoders (192-d, 12 blocks, 3 heads) on 64x64 images (16 patches); the
# decoder shrunk to one 32-d block so a step takes milliseconds.
SMALL_DECODER = ['model.neck.embed_dims=32', 'model.neck.num_layers=1',
                 'model.neck.num_heads=2']


tool = bm  # the command line: ``tool.main(argv)``


def run_tool(tmp_path, *extra, name='out.json', algo='sdae', options=SMALL_DECODER):
    out = tmp_path / name
    argv = ['--algo', algo, '--arch', 't', '--img-size', '64', '--batch-size', '2',
            '--iters', '2', '--warmup', '1', '--json', str(out), *extra]
    if options:
        argv += ['--cfg-options', *options]
    returned = tool.main(argv)
    with open(out) as f:
        written = json.load(f)
    return returned, written


def teacher_flops(num_tokens_per_view, num_views, num_patches, dims=192, depth=12,
                  patch=16):
    """FLOPs (2 per multiply-add) of a ViT teacher forward: patch embedding of all
    patches, then ``depth`` blocks on ``num_views`` sequences of ``N`` tokens each
    (qkv, proj and the two FFN linears: 12 N C^2 multiply-adds; attention: 2 N^2 C)."""
    N = num_tokens_per_view
    embed = 2 * num_patches * dims * 3 * patch * patch
    block = 2 * (12 * N * dims * dims + 2 * N * N * dims)
    return embed + depth * num_views * block


@pytest.fixture(scope='module')
def folds_and_full(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('bench')
    return (run_tool(tmp, '--teacher-views', 'folds', name='folds.json'),
            run_tool(tmp, '--teacher-views', 'full', name='full.json'))


def test_json_has_positive_figures(folds_and_full):
    (returned, written), _ = folds_and_full
    assert json.loads(json.dumps(returned)) == written
    for key in ('img_per_s', 'step_ms', 'peak_mem_mb', 'flops_per_img',
                'teacher_flops_per_img', 'achieved_tflops'):
        assert written[key] > 0, key
    assert set(written['breakdown_ms']) == set(bm.BREAKDOWN_KEYS)
    for key in ('student_forward', 'teacher_forward', 'backward', 'optimizer',
                'teacher_update'):
        assert written['breakdown_ms'][key] > 0, key
    assert len(written['step_ms_all']) == 2
    assert written['img_per_s'] == pytest.approx(2 / (written['step_ms'] / 1e3))
    assert written['step_ms'] == pytest.approx(sorted(written['step_ms_all'])[0] / 2 +
                                               sorted(written['step_ms_all'])[1] / 2)
    assert written['peak_mem_kind'] == 'max_rss' and written['mfu'] is None
    assert 0 < written['import_mem_mb'] <= written['peak_mem_mb']
    assert written['peak_mem_above_imports_mb'] == pytest.approx(
        written['peak_mem_mb'] - written['import_mem_mb'])
    assert (written['algo'], written['arch'], written['device'], written['amp']) == \
        ('sdae', 't', 'cpu', 'none')
    assert written['teacher_update'] == 'ema'


def test_teacher_views_folds_and_full(folds_and_full):
    (folds, _), (full, _) = folds_and_full
    L = 16  # 64 / 16 = 4 x 4 patches; 4 visible, 12 masked -> 12 teacher tokens, 3 folds
    assert folds['num_patches'] == L and folds['num_teacher_tokens'] == 12
    assert (folds['teacher_views'], full['teacher_views']) == ('folds', 'full')
    # the counter sees exactly the teacher's matmuls: 3 views of 4 patches + cls, or the
    # whole image (16 patches + cls) as one sequence
    assert folds['teacher_flops_per_img'] == teacher_flops(5, 3, L)
    assert full['teacher_flops_per_img'] == teacher_flops(L + 1, 1, L)
    # the student side is the same model in both runs
    assert folds['flops_per_img'] - folds['teacher_flops_per_img'] == \
        full['flops_per_img'] - full['teacher_flops_per_img']


def test_flop_counter_counts_cpu_fused_attention():
    q = torch.randn(2, 3, 10, 8, requires_grad=True)
    with bm.flop_counter() as counter:
        F.scaled_dot_product_attention(q, q, q).sum().backward()
    bmm = 2 * 2 * 3 * 10 * 10 * 8  # one (B*H, 10, 8) x (8, 10) product
    # forward: QK^T and AV; backward (torch's formula for the fused kernels): the scores
    # recomputed plus the gradients of V, the scores, Q and K
    assert counter.get_total_flops() == 2 * bmm + 5 * bmm


@pytest.mark.parametrize('algo,options,update', [
    ('dbot', SMALL_DECODER + ['model.teacher_depths=[12]'], 'none'),
    ('rc_mae', SMALL_DECODER, 'ema'),
    ('mae', ['model.neck.decoder_embed_dim=32', 'model.neck.decoder_depth=1',
             'model.neck.decoder_num_heads=2'], 'none'),
])
def test_other_methods(tmp_path, algo, options, update):
    result, _ = run_tool(tmp_path, algo=algo, options=options)
    assert result['algo'] == algo and result['teacher_update'] == update
    assert result['img_per_s'] > 0 and result['flops_per_img'] > 0
    if algo == 'mae':
        assert result['teacher_flops_per_img'] == 0
        assert result['breakdown_ms']['teacher_forward'] == 0
    else:
        assert result['teacher_flops_per_img'] > 0


def test_adapt_model_cfg_sdae():
    cfg = bm.load_benchmark_config('sdae', 's', 224)
    m = cfg.model
    assert m.backbone.arch == m.teacher.arch == 'deit-small'
    assert m.neck.in_channels == m.neck.out_channels == 384
    assert m.neck.num_patches == 196 and m.num_teacher_tokens == 147
    cfg = bm.load_benchmark_config('sdae', 'l', 64)
    assert cfg.model.neck.in_channels == cfg.model.neck.out_channels == 1024
    assert cfg.model.neck.num_patches == 16 and cfg.model.num_teacher_tokens == 12
    assert bm.load_benchmark_config('sdae', 'b', 32).model.num_teacher_tokens == 3


def test_adapt_model_cfg_other_methods():
    dbot = bm.load_benchmark_config('dbot', 'l', 224).model
    assert list(dbot.teacher_depths) == [24, 24] and dbot.neck.out_channels == 1024
    rc = bm.load_benchmark_config('rc_mae', 't', 96).model
    assert rc.neck.in_channels == 192 and rc.neck.out_channels == 16 * 16 * 3
    assert rc.neck.num_patches == 36
    mae = bm.load_benchmark_config('mae', 's', 224).model
    assert mae.backbone.arch == 'deit-small' and mae.neck.embed_dim == 384


def test_bad_input():
    with pytest.raises(ValueError, match='arch'):
        bm.load_benchmark_config('sdae', 'x', 224)
    with pytest.raises(ValueError, match='img_size'):
        bm.load_benchmark_config('sdae', 't', 100)
    with pytest.raises(ValueError, match='algo'):
        bm.load_benchmark_config('byol', 't', 224)
    with pytest.raises(ValueError, match='teacher_views'):
        bm.run_benchmark('sdae', 't', img_size=32, teacher_views='half')
    with pytest.raises(ValueError, match='amp'):
        bm.run_benchmark('sdae', 't', img_size=32, amp='fp8')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA'):
            bm.run_benchmark('sdae', 't', img_size=32, device='cuda')
    with pytest.raises(ValueError, match="teacher_views='full'"):
        bm.run_benchmark('mae', 't', img_size=32, batch_size=1, iters=1, warmup=0,
                         teacher_views='full', flops=False,
                         cfg_options={'model.neck.decoder_depth': 1})
    with pytest.raises(SystemExit):
        tool.parse_args(['--amp', 'fp8'])
    with pytest.raises(ValueError, match='KEY=VALUE'):
        tool.parse_cfg_options(['model.neck'])


def test_compile_blocks_prepares_every_block():
    from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
    cfg = bm.load_benchmark_config('sdae', 't', 32, cfg_options={
        'model.neck.embed_dims': 32, 'model.neck.num_layers': 1, 'model.neck.num_heads': 2})
    model = bm.build_model(cfg, torch.device('cpu'))
    blocks = [m for m in model.modules() if isinstance(m, TransformerEncoderLayer)]
    rates = [m.drop_prob for m in model.backbone.modules() if hasattr(m, 'drop_prob')]
    with torch._dynamo.config.patch(specialize_float=False):
        assert bm.compile_blocks(model) == len(blocks) == 12 + 1 + 12
        assert torch._dynamo.config.specialize_float
    # stochastic-depth rates as Python floats (mmpretrain gives numpy scalars), same values
    after = [m.drop_prob for m in model.backbone.modules() if hasattr(m, 'drop_prob')]
    assert all(type(r) is float for r in after) and after == [float(r) for r in rates]
    assert max(after) == pytest.approx(0.25)
    with pytest.raises(ValueError, match='no transformer block'):
        bm.compile_blocks(torch.nn.Linear(2, 2))
