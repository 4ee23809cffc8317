"""Every error shipyard raises, in one tree.

Each class also derives from the builtin it resembles, so ``except ValueError``
keeps working for callers who do not know shipyard::

    ShipyardError(Exception)
    ├── ConfigError(ValueError)              shipyard.toml or SHIPYARD_* is wrong
    │   ├── ProjectNotFoundError(FileNotFoundError)
    │   └── ObjectivesError                  business objectives that cannot be checked
    ├── PipelineDefinitionError(TypeError)   a DAG that cannot run: cycle, bad wiring
    ├── MaterializerError(TypeError)         no way to store or load a type
    ├── StoreError(OSError)                  metadata or artifact store failed
    │   ├── ArtifactNotFoundError(LookupError)
    │   ├── ArtifactCorruptedError            bytes on disk do not match their hash
    │   ├── StoreVersionError                 store written by a newer shipyard
    │   └── OnlineStoreError                  the online feature store failed
    ├── ContractError(ValueError)            a contract file that is not valid ODCS
    ├── DataInputError(ValueError)           data that cannot be read at all
    ├── ContractViolation(ValueError)        a batch failed a contract's error rule
    ├── FeatureDefinitionError(ValueError)   an entity or feature view that cannot work,
    │                                        or data that breaks its declared schema
    ├── FeatureNotFoundError(LookupError)    a feature or view that is not defined
    ├── EvaluationError(ValueError)          data a model cannot be evaluated on
    ├── ModelNotFoundError(LookupError)      no such registered model, version or alias
    ├── RegistryError(ValueError)            a model or alias name that cannot be used
    ├── ExportError(FileExistsError)         an export folder that is not empty
    ├── PromotionRefusedError(RuntimeError)  no passing gate, and not forced with a reason
    ├── ProtocolError(ValueError)            a request that breaks the model's input or the protocol
    ├── ServingClosedError(RuntimeError)     a batcher or prediction log used after close
    ├── ServingError(ValueError)             a model whose inputs cannot be served as asked
    │   ├── BatcherClosedError
    │   └── PredictionLogClosedError
    ├── ScoreCountError(ValueError)          a model returned another number of scores than rows
    ├── MonitoringError(ValueError)          settings, labels or a log monitoring cannot use
    │   └── MonitoringConfigError(ConfigError) a [monitoring] table that cannot be checked
    ├── RunNotFoundError(LookupError)
    ├── StepFailedError(RuntimeError)        a step raised; carries the step and run
    └── MissingDependencyError(ImportError)  an optional extra is not installed

Messages say what was expected, what arrived, and what to do next.
"""

from __future__ import annotations


class ShipyardError(Exception):
    """Base class of every error raised by shipyard."""


class ConfigError(ShipyardError, ValueError):
    """A setting in ``shipyard.toml`` or a ``SHIPYARD_*`` variable is invalid."""


class ProjectNotFoundError(ConfigError, FileNotFoundError):
    """No ``shipyard.toml`` in the working directory or any of its parents."""


class ObjectivesError(ConfigError):
    """The business objectives (``[objectives]`` or ``Objectives(...)``) cannot be checked."""


class PipelineDefinitionError(ShipyardError, TypeError):
    """A pipeline's wiring cannot run: a cycle, a foreign value, a bad parameter."""


class MaterializerError(ShipyardError, TypeError):
    """No materializer can store or load a value of this type."""


class StoreError(ShipyardError, OSError):
    """The metadata store or the artifact store failed."""


class ArtifactNotFoundError(StoreError, LookupError):
    """An artifact record or its stored object does not exist."""


class ArtifactCorruptedError(StoreError):
    """An artifact's stored bytes no longer match the SHA-256 they were stored under."""


class StoreVersionError(StoreError):
    """The metadata store was written by a newer shipyard than this one."""


class OnlineStoreError(StoreError):
    """The online feature store cannot read or write (or was never materialized)."""


class ContractError(ShipyardError, ValueError):
    """A data contract is not valid YAML, not valid ODCS, or contradicts itself."""


class DataInputError(ShipyardError, ValueError):
    """Data given for validation cannot be read (wrong format, empty file, no such file)."""


class ContractViolation(ShipyardError, ValueError):
    """A batch broke an error-severity rule of its contract; the report says which."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class FeatureDefinitionError(ShipyardError, ValueError):
    """An entity or feature view is ill-defined, or its data breaks its declared schema."""


class FeatureNotFoundError(ShipyardError, LookupError):
    """A requested feature, view or entity is not defined; the message lists the defined ones."""


class ServingClosedError(ShipyardError, RuntimeError):
    """A part of the serving path was used after it was closed."""


class BatcherClosedError(ServingClosedError):
    """A request reached a :class:`MicroBatcher` that was closed."""


class PredictionLogClosedError(ServingClosedError):
    """A prediction was appended to a log that was already closed."""


class ServingError(ShipyardError, ValueError):
    """A model that cannot be served as asked: its inputs' types are unknown, a feature
    is produced by two views, a served model fails its start-up check."""


class ScoreCountError(ShipyardError, ValueError):
    """The score function returned a number of scores other than one per row."""


class MonitoringError(ShipyardError, ValueError):
    """Monitoring cannot use what it was given: labels, a log window, a rule or a setting."""


class MonitoringConfigError(MonitoringError, ConfigError):
    """The ``[monitoring]`` table of ``shipyard.toml`` cannot be checked."""


class ProtocolError(ShipyardError, ValueError):
    """A request that does not fit the model's input schema or the wire protocol.

    Attributes:
        status: The HTTP status to answer with: 400 for a malformed request
            (v2 and MLflow say so), 422 for records that break the schema.
        problems: One line per problem, each naming the record and field, what
            was expected and what arrived.
    """

    def __init__(self, problems: list[str], *, status: int = 422) -> None:
        self.status = status
        self.problems = list(problems)
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{len(problems)} problems in the request:\n" + "\n".join(
                f"- {problem}" for problem in problems
            )
        super().__init__(message)


class RunNotFoundError(ShipyardError, LookupError):
    """No run or step run matches the given id."""


class EvaluationError(ShipyardError, ValueError):
    """Labels, scores or groups a model cannot be evaluated on (one class, NaN scores...)."""


class ModelNotFoundError(ShipyardError, LookupError):
    """No registered model, version or alias of that name; the message lists what exists."""


class RegistryError(ShipyardError, ValueError):
    """A model or alias name that cannot be used; the message says what is allowed."""


class ExportError(ShipyardError, FileExistsError):
    """The folder to export a model into exists and is not empty."""


class PromotionRefusedError(ShipyardError, RuntimeError):
    """A version without a passing gate was promoted without ``force`` and a reason."""


class StepFailedError(ShipyardError, RuntimeError):
    """A step raised; the run is marked failed and its finished artifacts are kept."""

    def __init__(self, message: str, *, run_id: str, step: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.step = step


class MissingDependencyError(ShipyardError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""


def missing_extra(package: str, extra: str, purpose: str) -> MissingDependencyError:
    """Build the error for an optional dependency that is not installed."""
    return MissingDependencyError(
        f"{purpose} needs the package {package!r}, which is not installed. "
        f"Install it with: pip install 'shipyard[{extra}]'"
    )
