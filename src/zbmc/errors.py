"""Every wire error is a class: code, HTTP status and message template, rendered in one place."""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    status: ClassVar[int] = 500
    template: ClassVar[str] = "An internal error occurred."

    def __init__(self, message: str | None = None, **fields: Any) -> None:
        self.message = message if message is not None else self.template.format(**fields)
        super().__init__(self.message)


class InternalServerError(ApiError):
    pass


# --- protocol -------------------------------------------------------------------------------


class PathNotFound(ApiError):
    code, status, template = "INVALID_PATH", 404, "The path `{path}` does not exist."


class MethodNotAllowed(ApiError):
    code, status, template = "INVALID_HTTP_METHOD", 405, "Only POST is supported, not {method}."


class BodyTooLarge(ApiError):
    code, status = "INVALID_PARAMETER_BODY_TOO_LARGE", 413
    template = "The request body exceeds {limit} bytes."


class InvalidAction(ApiError):
    code, status, template = "INVALID_ACTION", 400, "The action `{action}` is not supported."


class InvalidVersion(ApiError):
    code, status, template = "INVALID_VERSION", 400, "The version `{version}` is not supported."


class InvalidParameter(ApiError):
    code, status, template = "INVALID_PARAMETER", 400, "{detail}"


class MissingParameter(ApiError):
    code, status, template = "MISSING_PARAMETER", 400, "The parameter `{name}` is required."


class StateBusy(ApiError):
    # Operators' endpoints only: a snapshot restore or reset meets a worker tick (zbmc.snapshots).
    code, status, template = "OPERATION_DENIED_WORKER_TICK_IN_PROGRESS", 409, "{detail}"


class RequestLimitExceeded(ApiError):
    code, status, template = "REQUEST_LIMIT_EXCEEDED", 429, "Too many requests; retry later."


# --- authentication (spec Q1-Q3) ---------------------------------------------------------------


class InvalidAuthorization(ApiError):
    code, status, template = "AUTHFAILURE_INVALID_AUTHORIZATION", 401, "{detail}"


class SignatureFailure(ApiError):
    code, status = "AUTHFAILURE_SIGNATURE_FAILURE", 401
    template = "The request signature does not match."


class SignatureExpired(ApiError):
    code, status = "AUTHFAILURE_SIGNATURE_EXPIRED", 401
    template = "The request timestamp is outside the allowed window of {window} seconds."


class ActionNotSigned(ApiError):
    # ZBMC_REQUIRE_SIGNED_ACTION (docs/security.md); zbmc's own code, no source names one
    code, status = "AUTHFAILURE_ACTION_NOT_SIGNED", 401
    template = (
        "This server requires X-ZC-Action to be signed: list x-zc-action in SignedHeaders "
        "(got `{signed}`)."
    )


class SignatureReplayed(ApiError):
    # The replay policy (docs/security.md); zbmc's own code, no source names one
    code, status = "AUTHFAILURE_SIGNATURE_REPLAYED", 401
    template = (
        "This signed {action} request was already applied; a write is applied once per "
        "signature. Sign the request again (a new X-ZC-Timestamp) to repeat it."
    )


# --- resources ---------------------------------------------------------------------------------


class InstanceNotFound(ApiError):
    code, status, template = (
        "INVALID_INSTANCE_NOT_FOUND",
        404,
        "Instance `{instance_id}` not found.",
    )


class ZoneNotFound(ApiError):
    code, status, template = (
        "INVALID_ZONE_NOT_FOUND",
        404,
        "The specified zoneId `{zone_id}` is not found.",
    )


class InstanceTypeNotFound(ApiError):
    code, status = "INVALID_INSTANCE_TYPE_NOT_FOUND", 404
    template = "The specified instanceTypeId `{instance_type_id}` is not found."


class ImageNotFound(ApiError):
    code, status, template = (
        "INVALID_IMAGE_NOT_FOUND",
        404,
        "The specified imageId `{image_id}` is not found.",
    )


class InstanceTypeZoneNoSell(ApiError):
    code, status = "INVALID_INSTANCE_TYPE_ZONE_NO_SELL", 400
    template = "Instance type `{instance_type_id}` is not sold in zone `{zone_id}`."


# --- bandwidth (seed: ModifyInstanceBandwidth) -------------------------------------------------


class BandwidthProcessing(ApiError):
    code, status = "OPERATION_FAILED_INSTANCE_BANDWIDTH_PROCESSING", 403
    template = "The bandwidth of instance `{instance_id}` is being modified."


class HaModelNoBandwidth(ApiError):
    code, status = "OPERATION_DENIED_HA_MODEL_TYPE_NOT_SUPPORT_BANDWIDTH", 403
    template = "High availability instance types do not support bandwidth configuration."


class InstanceNotRunning(ApiError):
    code, status = "OPERATION_DENIED_INSTANCE_NOT_RUNNING", 403
    template = "Instance `{instance_id}` is not RUNNING."


class BandwidthExceed(ApiError):
    code, status = "INVALID_PARAMETER_BANDWIDTH_EXCEED", 400
    template = "bandwidthOutMbps must be between 1 and {maximum} Mbps, got {value}."


class DowngradeNotExist(ApiError):
    # One status for both Cancel actions: 404, as the BMC traffic-package page documents (the
    # 403 comes from the VM twin's bandwidth page only); docs/behaviour.md.
    code, status = "OPERATION_DENIED_DOWNGRADE_NOT_EXIST", 404
    template = "Instance `{instance_id}` has no scheduled {what} downgrade."


# --- traffic package (seed: ModifyInstanceTrafficPackage) --------------------------------------


class InstanceStatusNotSupport(ApiError):
    code, status = "OPERATION_DENIED_INSTANCE_STATUS_NOT_SUPPORT", 403
    template = (
        "Instance status `{status}` is not supported; the instance must be RUNNING or STOPPED."
    )


class PlanTrafficPackageExists(ApiError):
    code, status = "OPERATION_FAILED_INSTANCE_EXIST_PLAN_TRAFFIC_PACKAGE", 403
    template = "A scheduled traffic package downgrade exists for instance `{instance_id}`."


class TrafficPackageProcessing(ApiError):
    code, status = "OPERATION_DENIED_INSTANCE_TRAFFIC_PACKAGE_PROCESSING", 403
    template = "The traffic package of instance `{instance_id}` is being modified."


class TrafficPackageLess(ApiError):
    code, status = "INVALID_PARAMETER_TRAFFIC_PACKAGE_LESS", 400
    template = "trafficPackageSize must be at least the default package of {minimum} TB."


class TrafficPackageError(ApiError):
    code, status = "INVALID_PARAMETER_TRAFFIC_PACKAGE_ERROR", 400
    template = "trafficPackageSize `{value}` is invalid: it must be >= 0 and a multiple of 0.05."


class InternetChargeTypeNotSupport(ApiError):
    code, status = "OPERATION_DENIED_INTERNET_CHARGE_TYPE_NOT_SUPPORT", 403
    template = "This operation requires internetChargeType {required}; the instance uses {actual}."


class TrafficPackageExceed(ApiError):
    code, status = "INVALID_PARAMETER_TRAFFIC_PACKAGE_EXCEED", 400
    template = "trafficPackageSize must not exceed {maximum} TB."


class NoTrafficPackage(ApiError):
    # The seed's spelling; the Go SDK's constant is OPERATION_FILED_... (docs/behaviour.md).
    code, status = "OPERATION_FAILED_INSTANCE_NOT_EXIST_TRAFFIC_PACKAGE", 403
    template = "Instance `{instance_id}` does not have a traffic package."


# --- resource manager (zrm): tags -----------------------------------------------------------------


class TagResourceNotFound(ApiError):
    code, status = "INVALID_RESOURCE_NOT_FOUND", 404
    template = "Resource `{resource_id}` not found."


class ResourceCanNotBound(ApiError):
    code, status = "INVALID_RESOURCE_CAN_NOT_BOUND", 404
    template = "Resource `{resource_id}` already carries tag key `{key}` with another value."


class TagNotFound(ApiError):
    code, status = "INVALID_TAG_NOT_FOUND", 404
    template = "Tag `{key}`=`{value}` not found."


# --- instances and billing ---------------------------------------------------------------------


class InstanceRecycled(ApiError):
    code, status = "OPERATION_DENIED_INSTANCE_RECYCLED", 403
    template = "Instance `{instance_id}` is in the recycle bin."


class InstanceNotStopped(ApiError):
    code, status = "OPERATION_DENIED_INSTANCE_NOT_STOPPED", 403
    template = "Instance `{instance_id}` is not STOPPED."


class InstanceStatusDenied(ApiError):
    code, status = "OPERATION_DENIED_INSTANCE_STATUS", 403
    template = (
        "Instance `{instance_id}` is in status `{status}`, which does not allow this operation."
    )


class InstanceCreating(ApiError):
    code, status = "OPERATION_DENIED_INSTANCE_CREATING", 403
    template = "Instance `{instance_id}` is being created."


class InstanceStatusInstalling(ApiError):
    code, status = "OPERATION_DENIED_INSTANCE_STATUS_INSTALLING", 403
    template = "Instance `{instance_id}` is installing its operating system."


class InstanceNotRecycled(ApiError):
    code, status = "OPERATION_DENIED_INSTANCE_NOT_RECYCLED", 403
    template = "Instance `{instance_id}` is not in the recycle bin."


class BalanceInsufficient(ApiError):
    code, status = "OPERATION_DENIED_BALANCE_INSUFFICIENT", 403
    template = "The account balance {balance} is insufficient to pay {amount}."


class ChargeTypeNotSupport(ApiError):
    code, status = "INVALID_CHARGE_TYPE_NOT_SUPPORT", 403
    template = "instanceChargeType `{charge_type}` is not supported here."


class IllegalTime(ApiError):
    code, status, template = "INVALID_PARAMETER_ILLEGAL_TIME", 400, "{detail}"


def all_error_classes() -> list[type[ApiError]]:
    """Every concrete error class (used by docs and the OpenAPI document)."""
    found: list[type[ApiError]] = []
    stack: list[type[ApiError]] = [ApiError]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            found.append(sub)
            stack.append(sub)
    return found


class InstanceNameExceed(ApiError):
    code, status = "INVALID_PARAMETER_INSTANCE_NAME_EXCEED", 400
    template = "instanceName must be 1-64 letters, digits, '-', '.' or '_'."


# --- instance creation (spec instances.md §0) ---------------------------------------------------


class SubnetNotFound(ApiError):
    code, status = "INVALID_SUBNET_NOT_FOUND", 404
    template = "The specified subnetId `{subnet_id}` is not found."


class ResourceGroupNotFound(ApiError):
    code, status = "OPERATION_FAILED_RESOURCE_GROUP_NOT_FOUND", 404
    template = "The specified resourceGroupId `{resource_group_id}` is not found."


class ResourceNotFound(ApiError):
    code, status, template = "OPERATION_FAILED_RESOURCE_NOT_FOUND", 404, "{detail}"


class BandwidthZoneNoSell(ApiError):
    code, status = "INVALID_INSTANCE_BANDWIDTH_ZONE_NO_SELL", 400
    template = (
        "internetChargeType `{internet_charge_type}` is not sold for instance type "
        "`{instance_type_id}` in zone `{zone_id}`."
    )


class SoldOut(ApiError):
    code, status = "RESOURCES_SOLDOUT_INSTANCE_TYPE", 400
    template = (
        "Instance type `{instance_type_id}` in zone `{zone_id}` has {qty} in stock; "
        "{amount} requested."
    )


class BandwidthValueExceedMaximum(ApiError):
    code, status = "INVALID_BANDWIDTH_VALUE_EXCEED_MAXIMUM", 400
    template = "internetMaxBandwidthOut must be between 1 and {maximum} Mbps, got {value}."


class HostnameExceed(ApiError):
    code, status = "INVALID_PARAMETER_HOSTNAME_EXCEED", 400
    template = "hostname `{hostname}` is longer than 64 characters."


class HostnameMalformed(ApiError):
    code, status = "INVALID_PARAMETER_HOSTNAME_MALFORMED", 400
    template = (
        "hostname `{hostname}` is malformed: use letters, digits, '-' and '.', starting and "
        "ending with a letter or digit, and `[begin,bits]` patterns (begin 0-99999, bits 1-6)."
    )


class PasswordMalformed(ApiError):
    code, status = "INVALID_PARAMETER_VALUE_PASSWORD_MALFORMED", 400
    template = (
        "password must be 8-16 characters with an upper-case letter, a lower-case letter, a "
        "digit and one of ~!@$^*-_=+, and nothing else."
    )


class LoginConflict(ApiError):
    code, status = "INVALID_PARAMETER_INSTANCE_LOGIN_CONFLICT", 400
    template = "Give only one of password, keyId and sshKeys."


class SshKeyMalformed(ApiError):
    code, status, template = "INVALID_PARAMETER_SSH_KEY_MALFORMED", 400, "{detail}"


class SshKeyDuplicate(ApiError):
    code, status, template = "INVALID_PARAMETER_SSH_KEY_DUPLICATE", 400, "sshKeys has duplicates."


class RaidFastCustomConflict(ApiError):
    code, status = "INVALID_RAID_CONFIG_FAST_CUSTOM_CONFLICT", 400
    template = "raidConfig takes raidType or customRaids, not both."


class RaidNotSupport(ApiError):
    code, status = "INVALID_INSTANCE_TYPE_RAID_NOT_SUPPORT", 400
    template = "Instance type `{instance_type_id}` does not support RAID {raid_type}."


class RaidDiskMismatch(ApiError):
    code, status, template = "INVALID_PARAMETER_VALUE_RAID_DISK_MISMATCH", 400, "{detail}"


class RaidDiskDisorder(ApiError):
    code, status = "INVALID_PARAMETER_VALUE_RAID_DISK_DISORDER", 400
    template = "diskSequence {sequence} must list consecutive disks in ascending order."


class RaidDiskSequenceDuplicate(ApiError):
    code, status = "INVALID_PARAMETER_VALUE_RAID_DISK_SEQUENCE_DUPLICATE", 400
    template = "Disk {disk} appears more than once in customRaids."


class RaidDiskSequenceRange(ApiError):
    code, status = "INVALID_PARAMETER_VALUE_RAID_DISK_SEQUENCE_RANGE", 400
    template = "Disk {disk} does not exist: the instance type has disks 1..{count}."


class NicNameConflict(ApiError):
    code, status = "INVALID_PARAMETER_NIC_NAME_CONFLICT", 400
    template = "wanName and lanName must differ."


class NicNameMalformed(ApiError):
    code, status = "INVALID_PARAMETER_NIC_NAME_MALFORMED", 400
    template = (
        "NIC name `{name}` is malformed: 4-10 letters or digits starting with a letter; "
        "wanName must not start with 'lan' and lanName not with 'wan'."
    )


class PartitionImageNotSet(ApiError):
    code, status = "INVALID_PARTITION_IMAGE_NOT_SET", 400
    template = "partitions need an imageId."


class PartitionSizeNotFull(ApiError):
    code, status = "INVALID_PARTITION_SIZE_NOT_FULL", 400
    template = "The partitions need {needed} GB; the system volume has {capacity} GB."


class PartitionDuplicateFilePath(ApiError):
    code, status = "INVALID_PARTITION_DUPLICATE_FILE_PATH", 400
    template = "fsPath `{path}` appears more than once."


class PartitionMissingRequiredFilePath(ApiError):
    code, status = "INVALID_PARTITION_MISSING_REQUIRED_FILE_PATH", 400
    template = "partitions must include `{path}`."


class PartitionMalformed(ApiError):
    code, status, template = "INVALID_PARTITION_MALFORMED", 400, "{detail}"


class PartitionNoType(ApiError):
    code, status = "INVALID_PARTITION_NO_TYPE", 400
    template = "fsType `{fs_type}` is not valid for {os_type} (use {allowed})."


class PartitionInvalidOrder(ApiError):
    code, status, template = "INVALID_PARTITION_INVALID_ORDER", 400, "{detail}"


class AddressPoolExhausted(ApiError):
    code, status = "RESOURCE_INSUFFICIENT_PRODUCT_SOLD_OUT", 400
    template = "No free {kind} address is left for zone `{zone_id}`."
