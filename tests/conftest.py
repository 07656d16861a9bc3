"""Fixtures, and which tests are slow; the helpers they use are in helpers.py."""

from pathlib import Path

import pytest
from helpers import make_tiny_dataset, need_datasets


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    return need_datasets()


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return make_tiny_dataset(tmp_path / "data")


# `pytest -m "not slow"` is the quick subset (under 2 minutes on 2 cores); CI runs everything.
# Slow: the modules whose shared fixtures train or start dozens of processes, and each test
# that took 2.5 s or more in a full run on a busy 2-core Intel Xeon (--durations).
SLOW_MODULES = ("test_cli_errors.py", "test_outputs.py", "test_real_data.py",
                "test_distributed.py", "test_reliability.py")  # fmt: skip
SLOW_TESTS = (
    "test_ansatz.py::test_lqer_trains_with_each_ansatz",
    "test_ansatz.py::test_noise_and_the_pennylane_backend_match_for_every_ansatz",
    "test_ansatz.py::test_parameter_shift_matches_backprop_with_noise",
    "test_api.py::test_fit_takes_overrides",
    "test_api.py::test_predict_and_evaluate_agree_with_the_stored_threshold",
    "test_compare.py::test_a_finished_run_is_reused_from_its_files_without_checkpoints",
    "test_compare.py::test_compare_writes_tables_for_models_ablations_and_delong",
    "test_compare.py::test_pieces_running_side_by_side_keep_each_others_records",
    "test_compare.py::test_report_of_a_comparison_and_of_a_run",
    "test_dense.py::test_scan_dense_writes_the_same_outputs",
    "test_detection_metrics.py::test_scan_with_coco_annotations_writes_every_metric_on_arcade_frames",
    "test_detector.py::test_a_tiny_run_trains_resumes_and_refuses_other_settings",
    "test_detector.py::test_export_a_detector_to_onnx_and_scan_with_it",
    "test_detector.py::test_patch_commands_refuse_a_detector_in_one_line",
    "test_detector.py::test_scan_with_a_detector_scores_frames_against_polygons",
    "test_detector.py::test_ship_a_detector_with_its_one_false_positive_threshold",
    "test_detector.py::test_training_frames_never_repeat_a_test_or_validation_frame",
    "test_docs.py::test_the_site_builds_strictly",
    "test_docs.py::test_the_tutorial_notebook_runs",
    "test_export.py::test_export_fails_and_writes_nothing_without_parity",
    "test_export.py::test_export_matches_pytorch_on_real_patches",
    "test_frame_audit.py::test_arcade_holds_exactly_the_known_duplicates_and_empty_frames",
    "test_negatives.py::test_mining_with_the_shipped_model_adds_false_candidates",
    "test_scan.py::test_scan_and_explain_of_a_dicom_run_leak_no_patient_data",
    "test_scan.py::test_scan_command_scores_real_frames_against_their_boxes",
    "test_scan.py::test_yolo_and_coco_boxes_score_as_voc_boxes",
    "test_serve.py::test_a_hostile_mixed_load_stays_bounded_and_drops_clients_that_left",
    "test_serve.py::test_explain_and_scan_answer_with_pictures",
    "test_shipped_detector.py::test_every_frame_format_gives_the_same_boxes",
    "test_train.py::test_bf16_on_cpus_with_amx_from_64_px",
    "test_train.py::test_checkpoint_of_another_format_version",
    "test_train.py::test_cli_train_evaluate_predict",
    "test_train.py::test_fit_writes_a_complete_run",
    "test_train.py::test_resume_continues_the_same_run",
    "test_train.py::test_tensorboard_gets_every_epoch",
    "test_train.py::test_training_learns_an_easy_task",
    "test_shipped_xca.py::test_predict_evaluate_explain_and_export_take_it",
    "test_weights.py::test_cli_uses_the_stored_threshold_unless_told",
    "test_weights.py::test_export_writes_fp16_safetensors_and_metadata",
)


def pytest_collection_modifyitems(items):
    for item in items:
        name = item.nodeid.removeprefix("tests/").split("[")[0]
        if name.startswith(SLOW_MODULES) or name in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
